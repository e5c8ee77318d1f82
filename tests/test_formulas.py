"""The layer recursion, the matrix form and the general formula, each against an independent answer."""

from __future__ import annotations

import random
import tomllib

import mpmath
import pytest
import sympy as sp
from sympy import MatMul, MatrixSymbol, Transpose
from sympy.matrices.common import ShapeError

from derive import example_names, solve
from derive.derived import checked, formulas
from derive.model.examples import example_text
from derive.text.printer import tex
from derive.derived.formulas import (
    batch_matrix,
    bias_matrix,
    general_formula,
    layer_recursion,
    matrix_form,
    matrix_values,
    weight_matrix,
)

TOLERANCE = sp.Float("1e-45")       # the engine keeps 60 digits where exp enters

MORE = {   # what the built-in examples leave out: bce, sse, leaky ReLU, softplus, row-wise softmax, no bias
    "bce-rows-shared": {"network": {"layers": [2, 3, 2], "activation": "sigmoid", "loss": "bce", "bias": "shared",
                                    "convention": "row"},
                        "data": {"x": [[0.5, -1], [1, 0.25], [0, 2]], "y": [[1, 0], [0, 1], [1, 1]]}},
    "leaky-sse": {"network": {"layers": [3, 2, 2, 1], "activation": ["leaky_relu", "softplus", "linear"],
                              "loss": "sse", "bias": "neuron"},
                  "data": {"x": [[0.5, -1, 2], [-1, -0.5, 0.3]], "y": [[1], [-1]]}},
    "softmax-rows": {"network": {"layers": [2, 2, 3], "activation": ["tanh", "softmax"], "loss": "cross_entropy",
                                 "convention": "row"},
                     "data": {"x": [[0.5, -1], [1, 1]], "y": [[0, 1, 0], [0.2, 0.3, 0.5]]}},
}
SPECS = [*example_names(), *MORE]


def spec_of(name):
    return MORE.get(name, name)


def same(a, b) -> bool:
    """Exactly equal when both are rational, else equal to far beyond display precision."""
    a, b = sp.sympify(a), sp.sympify(b)
    if a.is_Rational and b.is_Rational:
        return a == b
    return abs(a - b) < TOLERANCE


def same_matrix(A, B) -> bool:
    return A.shape == B.shape and all(same(a, b) for a, b in zip(A, B))


def explicit(net, expr):
    """Every named intermediate replaced by its definition: an expression in parameters, x and y."""
    for _ in range(len(net.order) + 1):
        expr = expr.xreplace(net.definitions)
    return expr


def engine_gradient(d, p):
    """The engine's ∂e/∂p with every adjoint and intermediate written out."""
    back = {d.adjoint[v]: d.gradient[v] for v in d.backward_order}
    expr = d.gradient[p]
    while expr.free_symbols & back.keys():
        expr = expr.xreplace(back)
    return explicit(d.network, expr)


def chain(L: int, loss: str, samples: int = 1, activation: str = "sigmoid"):
    """A chain of L single units with biases (random small exact parameters)."""
    return solve({"network": {"layers": [1] * (L + 1), "activation": activation, "bias": "neuron", "loss": loss},
                  "data": {"x": [[0.5]] * samples, "y": [[0.25]] * samples}, "init": {"seed": L}})


def is_zero(expr) -> bool:
    return sp.expand(expr) == 0 or sp.simplify(expr) == 0


# -- 1. the layer recursion --------------------------------------------------------------------

def test_recursion_of_mazur_network_reads_as_the_textbook():
    """Hand-written: δ_o = (o − y) o(1 − o), δ_h1 = h1(1 − h1)(w5 δ_o1 + w7 δ_o2), ∂E/∂w = δ · input."""
    s = solve("sigmoid-222")
    v = s.symbol
    output, hidden = layer_recursion(s.derivation)
    assert (output.layer, output.output, hidden.layer, hidden.output) == (2, True, 1, False)
    o1, y1 = v("o1"), v("y1")
    assert sp.expand(output.units[0].recursion - (o1 - y1) * o1 * (1 - o1)) == 0
    h1 = v("h1")
    assert output.units[0].delta == v("delta_o1")
    expected = h1 * (1 - h1) * (v("w5") * v("delta_o1") + v("w7") * v("delta_o2"))
    assert sp.expand(hidden.units[0].recursion - expected) == 0
    assert hidden.units[0].upstream_rule == v("w5") * v("delta_o1") + v("w7") * v("delta_o2")
    grads = {g.parameter: g.rule for g in output.weights + output.biases + hidden.weights}
    assert grads[v("w5")] == v("delta_o1") * h1
    assert grads[v("w3")] == v("delta_h2") * v("x1")
    assert grads[v("b2")] == v("delta_o1") + v("delta_o2")          # one shared bias: both units' δ
    assert len(output.biases) == 1 and len(hidden.weights) == 4


@pytest.mark.parametrize("name", SPECS)
def test_recursion_evaluates_to_the_engines_deltas(name):
    s = solve(spec_of(name))
    d, step = s.derivation, s.training.first
    recursion = layer_recursion(d)
    assert [r.layer for r in recursion] == list(range(s.spec.depth, 0, -1))
    for sample in step.samples:
        for layer in recursion:
            for u in layer.units:
                assert same(u.recursion.xreplace(sample), sample[u.delta])
            for g in layer.weights + layer.biases:
                assert same(g.rule.xreplace(sample), sample[g.gradient])


# -- 2. the matrix form --------------------------------------------------------------------------

@pytest.mark.parametrize("name", SPECS)
def test_matrix_form_equals_the_engine(name):
    """Matrix algebra on the whole batch against the engine's per-unit chain rule."""
    s = solve(spec_of(name))
    net, d, step = s.network, s.derivation, s.training.first
    form = matrix_form(net)
    values = matrix_values(form, net, step)
    for layer in form.layers:
        l = layer.layer
        assert same_matrix(values[layer.Z], batch_matrix(net, step, net.nets[l - 1]))
        assert same_matrix(values[layer.A], batch_matrix(net, step, net.activations[l - 1]))
        deltas = [d.adjoint[z] for z in net.nets[l - 1]]
        assert same_matrix(values[layer.Delta], batch_matrix(net, step, deltas))
        assert same_matrix(values[layer.dW], weight_matrix(net, l).xreplace(step.gradient))
        if layer.b is not None:
            assert same_matrix(values[layer.db], bias_matrix(net, l).xreplace(step.gradient))


@pytest.mark.parametrize("name", SPECS)
def test_loss_gradient_matrix_is_the_derivative_of_the_loss(name):
    """∂E/∂A^(L) entry by entry against sympy.diff of the loss, sample by sample."""
    s = solve(spec_of(name))
    net, step = s.network, s.training.first
    form = matrix_form(net)
    G = matrix_values(form, net, step)[form.layers[-1].upstream]
    row = s.spec.convention == "row"
    for n, sample in enumerate(step.samples):
        for j, o in enumerate(net.outputs):
            expected = sp.diff(net.definitions[net.loss], o).xreplace(sample)
            assert same(G[n, j] if row else G[j, n], expected)


@pytest.mark.parametrize("name", SPECS)
def test_every_factor_has_its_shape_and_a_name(name):
    s = solve(spec_of(name))
    spec, form = s.spec, matrix_form(s.network)
    row, N = spec.convention == "row", spec.samples
    for layer in form.layers:
        n, m = spec.layers[layer.layer], spec.layers[layer.layer - 1]
        # W as the spec stores it: input × output in the row and transposed conventions
        assert layer.W.shape == ((m, n) if spec.convention in ("row", "transposed") else (n, m))
        assert layer.Z.shape == layer.Delta.shape == ((N, n) if row else (n, N))
        assert layer.dW.shape == layer.W.shape
        if layer.b is not None:
            assert layer.db.shape == layer.b.shape
        for eq in layer.forward + layer.backward:
            assert eq.lhs.shape == eq.rhs.shape
            for f in eq.factors:
                assert (f.rows, f.cols) == f.matrix.shape
                symbol = f.matrix if isinstance(f.matrix, MatrixSymbol) else f.matrix.args[0]   # Xᵀ, diag(a)
                assert symbol in form.names


def test_sympy_refuses_a_product_of_the_wrong_shapes():
    form = matrix_form(solve("sigmoid-451-batch").network)
    hidden = form.layers[0]
    with pytest.raises(ShapeError):
        MatMul(hidden.Delta, hidden.below)         # 5×5 times 4×5: the transpose is needed


def test_third_seed_matrix_formula_is_the_seeds_own():
    """The seed writes Z1 = W_ihᵀ X + b_ih with W_ih 4×5 and dE/dW_ho = h1 · [dE/dO ∘ dO/dZ2]ᵀ, (5×5)·(5×1):
    the example stores W as the seed does (convention = "transposed"), so the formulas are the seed's."""
    form = matrix_form(solve("sigmoid-451-batch").network)
    out, hidden = form.layers[1], form.layers[0]
    assert hidden.W.shape == (4, 5) and out.W.shape == (5, 1) and form.X.shape == (4, 5)
    assert hidden.forward[0].rhs.args[0] == MatMul(Transpose(hidden.W), form.X)
    ours = out.backward[2]
    assert ours.lhs == out.dW and out.dW.shape == (5, 1)
    assert ours.rhs == MatMul(hidden.A, Transpose(out.Delta))
    # δ of the hidden layer: W_ho (5×1) times Δ2 (1×5), the seed's dZ2/dh1 = W_ho
    assert hidden.backward[0].rhs.args[0] == MatMul(out.W, out.Delta)


def test_row_convention_follows_the_second_seed():
    """Z = X·W + B with X N×n0 and W n0×n1; gradients Aᵀ Δ and 1ᵀ Δ."""
    form = matrix_form(solve("sigmoid-rows-mse").network)
    first, out = form.layers
    assert form.X.shape == (2, 2) and first.W.shape == (2, 3) and first.b.shape == (1, 3)
    assert first.forward[0].rhs.args[0] == MatMul(form.X, first.W)
    assert out.backward[2].rhs == MatMul(first.A.T, out.Delta)
    assert first.backward[-1].rhs.args[-1] == first.Delta


def test_softmax_layer_uses_each_samples_jacobian():
    form = matrix_form(solve("softmax-233").network)
    out = form.layers[-1]
    assert out.df_Z is None and out.column is not None
    delta_n = out.backward[1]
    assert delta_n.lhs == out.column.delta and delta_n.rhs.shape == (3, 1)
    assert "Jacobian" in delta_n.meaning


# -- 3. the general formula --------------------------------------------------------------------

@pytest.mark.parametrize("loss,samples", [("half_sse", 1), ("mse", 2)])
def test_general_formula_equals_engine_and_direct_differentiation(loss, samples):
    """L = 1 … 6, every k: the instantiated formula against the engine and sympy.diff of the loss."""
    formula = general_formula("sigmoid", loss)
    for L in range(1, 7):
        s = chain(L, loss, samples)
        net, d = s.network, s.derivation
        to_net = formula.substitution(net)
        loss_expr = explicit(net, net.loss)
        for k in range(1, L + 1):
            instance = formula.instantiate(L, k)
            for p, ours in ((net.weights[k - 1][0][0], instance.weight), (net.biases[k - 1][0], instance.bias)):
                ours = explicit(net, ours.xreplace(to_net))
                assert is_zero(ours - engine_gradient(d, p)), (L, k, p)
                assert is_zero(ours - sp.diff(loss_expr, p)), (L, k, p)


@pytest.mark.parametrize("activation,loss", [("tanh", "sse"), ("linear", "quadratic"), ("softplus", "half_sse")])
def test_general_formula_for_other_activations(activation, loss):
    formula = general_formula(activation, loss)
    for L in range(1, 4):
        s = chain(L, loss, 1, activation)
        net = s.network
        loss_expr = explicit(net, net.loss)
        for k in range(1, L + 1):
            ours = explicit(net, formula.instantiate(L, k).weight.xreplace(formula.substitution(net)))
            assert is_zero(ours - sp.diff(loss_expr, net.weights[k - 1][0][0])), (L, k)


def test_generic_formula_unrolls_the_recursion():
    """δ_k = ∂E/∂a_L f′(z_L) Π_{i=k}^{L−1} w_{i+1} f′(z_i): at L = 3, k = 1 by hand."""
    g = general_formula()
    s = g.symbols
    w, z, a, fp, x = s["w"], s["z"], s["a"], s["f'"], s["x"]
    dE = sp.Derivative(s["E"], a[3])
    expected = dE * fp(z[3]) * w[3] * fp(z[2]) * w[2] * fp(z[1])
    instance = g.instantiate(3, 1)
    assert instance.delta == expected and instance.weight == expected * x and instance.bias == expected
    assert g.instantiate(3, 3).weight == dE * fp(z[3]) * a[2]
    with pytest.raises(ValueError):
        g.instantiate(2, 3)


def test_general_formula_corrects_the_second_seed():
    """(Y − T) → (2/N)(a_L − y); X → a_{k−1}; the product's factor is w_{i+1}, not W_k."""
    g = general_formula("sigmoid", "mse")
    s = g.symbols
    a, w, y, N, x = s["a"], s["w"], s["y"], g.N, s["x"]
    assert sp.simplify(g.loss_gradient.rhs - 2 * (a[g.L] - y) / N) == 0
    weight = g.instantiate(2, 2).weight
    assert a[1] in weight.free_symbols and x not in weight.free_symbols
    deep = g.instantiate(4, 1).weight
    assert {w[2], w[3], w[4]} <= deep.free_symbols and w[1] not in deep.free_symbols


def test_vector_formula_is_an_ordered_product_with_checked_shapes():
    v = general_formula().instantiate_vector([2, 3, 2, 1], 1)
    names = [str(f) for f in v.delta.args]
    assert names == ["DiagMatrix(f'(z1))", "W2.T", "DiagMatrix(f'(z2))", "W3.T", "DiagMatrix(f'(z3))", "dE/da3"]
    assert v.weight.shape == (3, 2) and v.bias.shape == (3, 1)
    for m in v.weight.free_symbols:
        assert m in v.names


def test_vector_formula_equals_engine():
    """Widths 2–3, depth 1–4, every k: the vector formula with the step's numbers against the engine."""
    rng = random.Random(3)
    cases = [(depth, activation, loss) for depth in range(1, 5) for activation, loss in
             (("sigmoid", "half_sse"), ("tanh", "mse"))]
    formula = general_formula()
    for depth, activation, loss in cases:
        layers = [rng.randint(2, 3) for _ in range(depth + 1)]
        s = solve({"network": {"layers": layers, "activation": activation, "bias": "neuron", "loss": loss},
                   "data": {"x": [[rng.randint(-9, 9) / 10 for _ in range(layers[0])]],
                            "y": [[rng.randint(0, 9) / 10 for _ in range(layers[-1])]]},
                   "init": {"seed": depth}})
        net, step = s.network, s.training.first
        sample = step.samples[0]
        values = _vector_values(net, sample, layers)
        for k in range(1, depth + 1):
            v = formula.instantiate_vector(layers, k)
            ours = v.weight.xreplace({m: values[m.name] for m in v.weight.free_symbols}).doit().as_explicit()
            assert same_matrix(ours, weight_matrix(net, k).xreplace(step.gradient)), (layers, k)
            bias = v.bias.xreplace({m: values[m.name] for m in v.bias.free_symbols}).doit().as_explicit()
            assert same_matrix(bias, bias_matrix(net, k).xreplace(step.gradient)), (layers, k)


def _vector_values(net, sample, layers):
    """x, a_j, f′(z_j), W_j and ∂E/∂a_L as explicit column vectors and matrices of one sample."""
    column = lambda symbols: sp.ImmutableMatrix([sample[s] for s in symbols])
    values = {"x": column(net.inputs)}
    for j in range(1, len(layers)):
        f = net.activation(j - 1)
        values[f"a{j}"] = column(net.activations[j - 1])
        values[f"f'(z{j})"] = sp.ImmutableMatrix([f.df(z, a).xreplace(sample) for z, a in
                                                  zip(net.nets[j - 1], net.activations[j - 1])])
        values[f"W{j}"] = weight_matrix(net, j).xreplace(sample)
    L = len(layers) - 1
    values[f"dE/da{L}"] = sp.ImmutableMatrix([sp.diff(net.definitions[net.loss], o).xreplace(sample)
                                              for o in net.outputs])
    return values


def test_every_symbol_of_the_general_formula_is_named():
    g = general_formula()
    for eq in g.recursion + g.closed + g.vector_recursion + g.vector_closed + (g.loss_gradient,):
        for expr in (eq.lhs, eq.rhs):
            for s in expr.atoms(sp.Symbol, sp.Indexed):
                label = s.base.label if isinstance(s, sp.Indexed) else s
                assert label in g.names, label
            for f in expr.atoms(sp.core.function.AppliedUndef):
                assert type(f) in g.names


def test_general_formula_refuses_softmax_and_non_chains():
    with pytest.raises(ValueError):
        general_formula("softmax")
    with pytest.raises(ValueError):
        general_formula("sigmoid").substitution(solve("sigmoid-222").network)


def test_matrix_form_keeps_a_saturated_units_digits():
    """Hidden units at σ(±200): σ′ ≈ 1e-87, which 60 digits round to 0. The matrix form must keep
    the engine's (finite-difference-checked, see test_properties) gradients to their last digit."""
    raw = {"network": {"layers": [2, 2, 1], "activation": "sigmoid", "bias": "none", "loss": "half_sse"},
           "data": {"x": [[1, 0], [0, 1]], "y": [[1], [0]]}, "init": {"W1": [[200, 0], [0, -200]], "W2": [[1, 1]]}}
    s = solve(raw)
    net, step = s.network, s.training.first
    form = matrix_form(net)
    values = matrix_values(form, net, step)
    expected = weight_matrix(net, 1).xreplace(step.gradient)
    assert sum(bool(0 < abs(e) < 1e-80) for e in expected) == 2        # w1 and w4 feed the saturated units
    assert all(abs(got - e) < 1e-40 * abs(e) for got, e in zip(values[form.layers[0].dW], expected))


def test_cross_entropy_gradient_reads_as_by_hand():
    """bce: ∂E/∂A = (1/NJ)·(A − Y) ⊘ (A ⊙ (1 − A)), the error A − Y on top as the δ rule reads,
    not the (−A + Y) ⊙ (−1 + A)^∘−1 that sympy's canonical order gives."""
    from derive.text.printer import tex

    net = solve(MORE["bce-rows-shared"]).network
    last = matrix_form(net).layers[-1]
    text = tex(next(eq.rhs for eq in last.backward if eq.lhs == last.upstream))
    assert "A_{2} - Y" in text and r"- A_{2}\right)^{\circ\, -1}" in text    # A2 printed by its symbol's name
    assert "+ Y" not in text and "- 1_" not in text


def test_general_formula_uses_the_specs_leaky_slope():
    """A leaky ReLU with slope 3/10 and negative net inputs: the any-depth formula must carry 3/10,
    as sympy.diff of the written-out loss does (the registry's default slope is 1/100)."""
    raw = {"network": {"layers": [1, 1, 1, 1], "activation": ["leaky_relu", "leaky_relu", "linear"], "slope": 0.3,
                       "loss": "half_sse", "bias": "none"},
           "data": {"x": [[1]], "y": [[1]]}, "init": {"W1": [[-0.5]], "W2": [[0.4]], "W3": [[0.7]]}}
    s = solve(raw)
    net, step = s.network, s.training.first
    formula = general_formula("leaky_relu", "half_sse", "linear", slope=sp.Rational(3, 10))
    point = {**step.samples[0], **step.parameters}
    loss_expr = explicit(net, net.loss)
    for k in (1, 2, 3):
        w = net.weights[k - 1][0][0]
        ours = explicit(net, formula.instantiate(3, k).weight.xreplace(formula.substitution(net)))
        direct = sp.diff(loss_expr, w)
        assert sp.nsimplify(ours.xreplace(point)) == sp.nsimplify(direct.xreplace(point)) == step.gradient[w], k


# -- the transposed convention: the third seed's W_ih (4×5) used as W_ihᵀ ------------------------------

def test_transposed_matrix_form_is_the_column_one_with_w_transposed():
    """Every equation's right side: W^(l)ᵀ where the column convention has W^(l), and ∂E/∂W = A Δᵀ."""
    form = matrix_form(solve("sigmoid-451-batch").network)
    hidden, out = form.layers
    assert form.convention == "transposed" and form.X.shape == (4, 5)
    assert MatMul(hidden.W.T, form.X) in hidden.forward[0].rhs.args and hidden.W.shape == (4, 5)
    assert MatMul(out.W.T, hidden.A) in out.forward[0].rhs.args and out.W.shape == (5, 1)
    assert str(out.backward[2].rhs) == "A1*Delta2.T" and str(hidden.backward[1].rhs) == "X*Delta1.T"
    assert hidden.backward[0].rhs.args == (MatMul(out.W, out.Delta), hidden.df_Z)


def test_transposed_matrix_form_holds_at_the_numbers_computed_here():
    """Z1 = W1ᵀX + b1, A = σ(Z), Δ2 = (A2 − Y) ⊙ A2 ⊙ (1 − A2), Δ1 = (W2 Δ2) ⊙ A1 ⊙ (1 − A1), ∂E/∂W1 = X Δ1ᵀ,
    ∂E/∂W2 = A1 Δ2ᵀ and the biases' sums, computed in this test with mpmath's matrices from the JSON's matrices
    (W1 4×5, W2 5×1 as stored), equal the JSON's gradients and the values the document prints beside them."""
    s = solve("sigmoid-451-batch")
    out = s.json()

    def M(rows) -> mpmath.matrix:
        return mpmath.matrix([[mpmath.mpf(str(v)) for v in row] for row in rows])

    def entrywise(f, *ms):
        return mpmath.matrix([[f(*(m[i, j] for m in ms)) for j in range(ms[0].cols)] for i in range(ms[0].rows)])

    with mpmath.workdps(40):
        X, Y = M(s.spec.raw["data"]["x"]).T, M(s.spec.raw["data"]["y"]).T          # one column per sample
        W1, W2 = M(out["parameters"]["W1"]), M(out["parameters"]["W2"])
        b1, b2 = (mpmath.mpf(str(out["parameters"][b])) for b in ("b1", "b2"))
        assert (W1.rows, W1.cols, W2.rows, W2.cols, X.rows, X.cols) == (4, 5, 5, 1, 4, 5)
        A1 = entrywise(lambda z: 1 / (1 + mpmath.exp(-(z + b1))), W1.T * X)
        A2 = entrywise(lambda z: 1 / (1 + mpmath.exp(-(z + b2))), W2.T * A1)
        D2 = entrywise(lambda o, y: (o - y) * o * (1 - o), A2, Y)
        D1 = entrywise(lambda s_, h: s_ * h * (1 - h), W2 * D2, A1)
        ours = {"W1": X * D1.T, "W2": A1 * D2.T}
        biases = {"b1": sum(D1), "b2": sum(D2)}
        assert out["outputs"] == [[pytest.approx(float(A2[0, n]), rel=1e-14)] for n in range(5)]
        for name, G in ours.items():
            given = out["gradients"][name]
            assert (G.rows, G.cols) == (len(given), len(given[0]))
            assert all(abs(G[i, j] - v) <= 1e-14 * abs(v) for i, row in enumerate(given) for j, v in enumerate(row))
        for name, g in biases.items():
            assert abs(g - out["gradients"][name]) <= 1e-14 * abs(g)
        # the matrices the document prints beside each equation (derive's matrix algebra) are these too
        form = matrix_form(s.network)
        values = matrix_values(form, s.network, s.training.first)
        for layer, G in zip(form.layers, (ours["W1"], ours["W2"])):
            printed = values[layer.dW]
            assert printed.shape == (G.rows, G.cols)
            assert all(abs(mpmath.mpf(str(sp.N(printed[i, j], 40))) - G[i, j]) <= mpmath.mpf(10) ** -35
                       for i in range(G.rows) for j in range(G.cols))


def test_the_transposed_matrix_form_read_as_the_column_one_stops_the_check(monkeypatch):
    """W^(l) used as it is stored (in × out) where its transpose belongs, Z = W X + b: on square layers the
    shapes fit and only the numbers tell; the check before printing refuses it."""
    raw = {"network": {"layers": [2, 2, 2], "activation": "sigmoid", "bias": "neuron", "convention": "transposed"},
           "data": {"x": [[0.5, -0.2], [0.1, 0.9]], "y": [[0.3, 0.6], [0.8, 0.1]]},
           "init": {"W1": [[0.1, 0.4], [-0.3, 0.2]], "W2": [[0.5, -0.1], [0.2, 0.3]]}}
    s = solve(raw)
    checked.check_matrix_form(matrix_form(s.network), s.network, s.derivation, s.exact_first)     # holds
    monkeypatch.setattr(formulas, "used", lambda convention, W: W)
    with pytest.raises(checked.FormulaError, match="matrix-form formula Z1 gives"):
        checked.check_matrix_form(matrix_form(s.network), s.network, s.derivation, s.exact_first)


# -- [notation].symbols: the matrix form in a seed's own names ------------------------------------------

def _without_symbols(name: str) -> dict:
    """The built-in example as a dict, its [notation].symbols left out: derive's own names, the same network."""
    raw = tomllib.loads(example_text(name))
    del raw["notation"]["symbols"]
    return raw


@pytest.mark.parametrize("name, expected", [
    ("sigmoid-451-batch", {"W1": ("W_{ih}", "W_ih"), "b1": ("b_{ih}", "b_ih"), "W2": ("W_{ho}", "W_ho"),
                           "b2": ("b_{ho}", "b_ho"), "A1": ("h_{1}", "h1"), "A2": ("O", "O"), "X": ("X", "X"),
                           "Y": ("Y", "Y"), "dE/dW2": (r"\frac{\partial E}{\partial W_{ho}}", "dE/dW_ho")}),
    ("sigmoid-rows-mse", {"A1": ("H_{1}", "H1"), "A2": ("Y", "Y"), "Y": ("T", "T"), "b1": ("B_{1}", "B1"),
                          "W1": ("W_{1}", "W1"), "Delta2": (r"\Delta_{2}", "Delta2"),
                          "dE/dW2": (r"\frac{\partial E}{\partial W_{2}}", "dE/dW2"),
                          "dE/dA2": (r"\frac{\partial E}{\partial Y}", "dE/dY")}),
])
def test_the_matrix_form_names_the_seeds_matrices_as_they_do(name, expected):
    """The same matrices (derive's keys, shapes, equations) printed in the seed's names, and none of derive's
    layer superscripts where a symbol stands (no A^{(2)} once A2 is O)."""
    form = formulas.matrix_form(solve(name).network)
    names = {str(m): n for m, n in form.names.items()}
    assert {key: (names[key].latex, names[key].plain) for key in expected} == expected
    plain = formulas.matrix_form(solve(_without_symbols(name)).network)
    assert [(str(e.lhs), str(e.rhs)) for e in form.forward + form.backward] == \
        [(str(e.lhs), str(e.rhs)) for e in plain.forward + plain.backward]
    renamed = {key for key in expected if not key.startswith("dE/d") and key not in ("X", "Y")}
    for key in renamed:
        default = plain.names[next(m for m in plain.names if str(m) == key)].latex
        assert all(default not in n.latex for n in form.names.values()), (key, default)


def test_patels_matrix_form_reads_like_his_post():
    """Z1 = X W1 + B1, H1 = σ(Z1), Z2 = H1 W2 + B2, Y = σ(Z2) with derive's 1_N spreading the bias row."""
    form = formulas.matrix_form(solve("sigmoid-rows-mse").network)
    names = {m: n.latex for m, n in form.names.items()}
    lines = [f"{tex(e.lhs, names)} = {tex(e.rhs, names, keep_order=True)}" for e in form.forward]
    assert lines == [r"Z_{1} = X W_{1} + \mathbf{1}_{2} B_{1}", r"H_{1} = \sigma\left(Z_{1}\right)",
                     r"Z_{2} = H_{1} W_{2} + \mathbf{1}_{2} B_{2}", r"Y = \sigma\left(Z_{2}\right)"]
