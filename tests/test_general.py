"""The general formulas (any depth, layer notation): true for each kind of network, checked before they are printed."""

from __future__ import annotations

import tomllib

import mpmath
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from sympy import ImmutableMatrix

from derive import solve
from derive.derived import checked, formulas, general
from derive.derived.general import Writer, general_equations
from derive.model.examples import example_text
from derive.text.document import View, build
from derive.text.render import render_solution
from tests.test_properties import DIGITS, H, away_from_kinks, entries, forward, initial, moved, networks


def section(text: str, title: str) -> str:
    start = text.index(title)
    return text[start:text.index("\n## ", start)]


def any_depth(name_or_raw) -> str:
    return section(render_solution(solve(name_or_raw), "md"), "### Any number of layers")


def spec(layers, activations, loss="half_sse", bias="neuron", convention="column", y=None, samples=1) -> dict:
    init = {}
    for l in range(1, len(layers)):
        rows, cols = layers[l], layers[l - 1]
        W = [[round(0.1 * ((3 * l + 5 * j + 7 * k) % 9 - 4), 1) for k in range(cols)] for j in range(rows)]
        init[f"W{l}"] = [list(c) for c in zip(*W)] if convention in ("row", "transposed") else W
        if bias == "neuron":
            init[f"b{l}"] = [0.1 * (j + 1) for j in range(rows)]
        elif bias == "shared":
            init[f"b{l}"] = 0.2
    x = [[0.5 - 0.3 * k + 0.2 * n for k in range(layers[0])] for n in range(samples)]
    y = y or [[0.25 + 0.5 * ((j + n) % 2) for j in range(layers[-1])] for n in range(samples)]
    return {"network": {"layers": layers, "activation": activations, "loss": loss, "bias": bias,
                        "convention": convention},
            "data": {"x": x, "y": y}, "init": init}


# -- the mistakes the issue names, each failing on the previous general section ----------------

def test_softmax_with_cross_entropy_uses_the_jacobian_and_a_minus_y():
    text = any_depth("softmax-233")
    assert (r"\operatorname{diag}\left(\mathbf{a}^{(L)}\right) - \mathbf{a}^{(L)} \mathbf{a}^{(L)\mathsf{T}}"
            in text)
    assert r"&= \frac{1}{N} \left(\mathbf{a}^{(L)} - \mathbf{y}\right)" in text
    assert r"\left(1 - {a}_{L}\right)" not in text and r"\frac{\partial E}{\partial {a}_{L}} &= \frac{\partial" not in text


def test_softmax_recursion_collapses_to_o_minus_y_when_the_targets_sum_to_one():
    s = solve("softmax-233")
    text = section(render_solution(s, "md", doc=build(s, view=View(detail="full"))), "### The layer-wise recursion")
    for j in (1, 2, 3):
        assert f"&= o_{{{j}}} - y_{{{j}}}" in text


def test_softmax_with_targets_that_do_not_sum_to_one_keeps_the_jacobian_alone():
    raw = spec([2, 3], ["softmax"], "cross_entropy", y=[[0.5, 0.2, 0.1]])
    text = any_depth(raw)
    assert r"\mathbf{a}^{(L)} - \mathbf{y}" not in text
    assert r"\operatorname{diag}" in text


def test_the_row_convention_gets_its_general_formula_in_row_form_with_agreeing_shapes():
    text = any_depth("sigmoid-rows-mse")
    assert r"\frac{\partial e}{\partial W^{(l)}} &= \mathbf{a}^{(l - 1)\mathsf{T}} \boldsymbol{\delta}^{(l)}" in text
    assert r"\mathbf{z}^{(l)} &= \mathbf{a}^{(l - 1)} W^{(l)} + \mathbf{b}^{(l)}" in text
    assert "transposed" not in text
    s = solve("sigmoid-rows-mse")
    weights = next(e for e in general_equations(s.network) if e.key == "weights")
    for l in (1, 2):
        lhs, rhs = weights.at(Writer(s.network, concrete=True), sp.Integer(l))
        # in × out, as the spec writes W^(l) in the row convention: the gradient has the weights' shape
        assert rhs.shape == lhs.shape == (s.spec.layers[l - 1], s.spec.layers[l])


def test_the_transposed_convention_writes_the_column_formulas_with_w_transposed():
    """W^(l) stored input × output and used as W^(l)ᵀ (the third seed): z = Wᵀa + b, δ = (W δ) ⊙ f′,
    ∂e/∂W = a δᵀ, and every concrete layer's gradient has the stored shape n_{l−1} × n_l."""
    raw = spec([3, 2, 4, 1], ["tanh", "sigmoid", "sigmoid"], bias="neuron", convention="transposed", samples=2)
    text = any_depth(raw)
    assert r"\mathbf{z}^{(l)} &= W^{(l)\mathsf{T}} \mathbf{a}^{(l - 1)} + \mathbf{b}^{(l)}" in text
    assert (r"\boldsymbol{\delta}^{(l)} &= \left(W^{(l + 1)} \boldsymbol{\delta}^{(l + 1)}\right) \odot "
            r"f_{l}'\left(\mathbf{z}^{(l)}\right)") in text
    assert r"\frac{\partial e}{\partial W^{(l)}} &= \mathbf{a}^{(l - 1)} \boldsymbol{\delta}^{(l)\mathsf{T}}" in text
    assert (r"\operatorname{diag}\left(f_{l}'\left(\mathbf{z}^{(l)}\right)\right) W^{(l + 1)}\right) "
            r"\boldsymbol{\delta}^{(L)}") in text
    assert r"$W^{(l)}$ is $n_{l-1} \times n_l$" in text
    s = solve(raw)
    weights = next(e for e in general_equations(s.network) if e.key == "weights")
    for l in (1, 2, 3):
        lhs, rhs = weights.at(Writer(s.network, concrete=True), sp.Integer(l))
        assert rhs.shape == lhs.shape == (s.spec.layers[l - 1], s.spec.layers[l])
        assert len(s.json()["gradients"][f"W{l}"]) == s.spec.layers[l - 1]      # the JSON's stored W: in × out


def test_the_transposed_general_formulas_hold_at_the_numbers_computed_here():
    """The printed formulas of the transposed convention evaluated in this test, sample by sample, in mpmath's
    matrices from the JSON's stored matrices: z = Wᵀa + b, δ^(L) = (a − y) ⊙ a ⊙ (1 − a), δ^(l) = (W^(l+1) δ^(l+1))
    ⊙ σ′(z), ∂E/∂W = Σ_n a δᵀ give the JSON's gradients, W in its stored in × out shape."""
    raw = spec([3, 2, 4, 2], ["sigmoid"] * 3, bias="shared", convention="transposed", samples=3)
    out = solve(raw).json()

    def column(values) -> mpmath.matrix:
        return mpmath.matrix([[mpmath.mpf(str(v))] for v in values])

    def entrywise(f, *ms: mpmath.matrix) -> mpmath.matrix:
        return mpmath.matrix([[f(*(m[i, j] for m in ms)) for j in range(ms[0].cols)] for i in range(ms[0].rows)])

    with mpmath.workdps(30):
        W = [mpmath.matrix([[mpmath.mpf(v) for v in row] for row in out["parameters"][f"W{l}"]]) for l in (1, 2, 3)]
        b = [mpmath.mpf(out["parameters"][f"b{l}"]) for l in (1, 2, 3)]
        total = [mpmath.zeros(w.rows, w.cols) for w in W]
        for x, y in zip(raw["data"]["x"], raw["data"]["y"]):
            a = [column(x)]
            for w, bias in zip(W, b):
                a.append(entrywise(lambda z: 1 / (1 + mpmath.exp(-(z + bias))), w.T * a[-1]))
            delta = entrywise(lambda o, t: (o - t) * o * (1 - o), a[-1], column(y))
            for l in (3, 2, 1):
                total[l - 1] += a[l - 1] * delta.T
                delta = entrywise(lambda s, h: s * h * (1 - h), W[l - 1] * delta, a[l - 1])
        for l in (1, 2, 3):
            ours = out["gradients"][f"W{l}"]
            assert (total[l - 1].rows, total[l - 1].cols) == (len(ours), len(ours[0])) == (W[l - 1].rows, W[l - 1].cols)
            for i, row in enumerate(ours):
                for j, v in enumerate(row):
                    assert abs(total[l - 1][i, j] - v) <= 1e-15 + 1e-12 * abs(v), (l, i, j)


def test_mse_shows_where_its_one_over_n_and_its_two_go():
    text = render_solution(solve("sigmoid-rows-mse"), "md")
    assert r"e_{n} = \frac{1}{N J} \left(y - o\right)^{2} = \frac{1}{2} \left(y - o\right)^{2}, \quad N = 2,\ J = 1" in text
    assert r"\frac{\partial e_{1}}{\partial o} &= \frac{2}{J N} \left(o - y\right) \\" in text
    assert r"\frac{\partial e}{\partial \mathbf{a}^{(L)}} &= \frac{2}{J N} \left(\mathbf{a}^{(L)} - \mathbf{y}\right)" in text


def test_with_three_samples_the_slope_keeps_its_constant_in_front():
    """MSE over N = 3: ∂e/∂o is 2/3 (o − y), written so (SymPy's own 2o/3 − 2y/3 hides where the 2 and the 1/N went),
    and that constant times the error is the derivative of (1/3)(y − o)², worked by hand here: 2/3 (o − y)."""
    raw = {**tomllib.loads(example_text("sigmoid-rows-mse"))}
    raw["data"] = {"x": [[0.5, 0.1], [0.2, 0.7], [0.9, 0.4]], "y": [[1], [0], [1]]}
    s = solve(raw)
    text = render_solution(s, "md")
    assert r"&= \frac{2}{3} \left(o - y\right) \\" in text and r"\frac{2 o}{3}" not in text
    o, y = s.network.outputs[0], s.network.targets[0]
    assert sp.expand(s.derivation.gradient[o] - sp.Rational(2, 3) * (o - y)) == 0


def test_a_shared_bias_sums_its_layers_deltas():
    text = any_depth(spec([2, 2, 1], ["sigmoid", "sigmoid"], bias="shared"))
    # one number per layer: the scalar b^(l), spread over the units by the vector of ones
    assert r"\frac{\partial e}{\partial b^{(l)}} &= \mathbf{1}^{\mathsf{T}} \boldsymbol{\delta}^{(l)}" in text
    assert r"W^{(l)} \mathbf{a}^{(l - 1)} + \mathbf{1} b^{(l)}" in text
    assert r"\mathbf{b}" not in text
    table = render_solution(solve(spec([2, 2, 1], ["sigmoid", "sigmoid"], bias="shared")), "md")
    assert "| $b^{(l)}$ | `b(l)` | bias shared by the units of layer l (one number) |" in table
    assert r"\mathbf{b}" not in table


def test_a_network_with_both_kinds_of_bias_writes_each_as_it_is():
    text = any_depth(spec([2, 2, 1], ["sigmoid", "sigmoid"], bias=["neuron", "shared"]))
    assert r"+ \mathbf{b}^{(l)}" in text and r"+ \mathbf{1} b^{(l)}" in text


def test_mixed_activations_have_one_slope_per_layer():
    text = any_depth(spec([2, 2, 2, 1], ["tanh", "sigmoid", "linear"]))
    assert r"f_{l}'\left(\mathbf{z}^{(l)}\right)" in text
    assert r"$f_{1} = \tanh$, $f_{2} = \sigma$" in text
    # the linear output's slope is 1: δ^(L) is ∂e/∂a^(L), and a sentence says why
    assert r"\operatorname{id}'\left(" not in text
    assert r"\boldsymbol{\delta}^{(L)} &= \frac{\partial e}{\partial \mathbf{a}^{(L)}} \\" in text
    assert "Here the output layer is linear" in text
    assert r"\right) \odot f_{l}'\left(\mathbf{z}^{(l)}\right)" in text     # the hidden layers keep theirs
    one = any_depth(spec([2, 2, 1], ["tanh", "sigmoid"]))
    assert r"\tanh'\left(\mathbf{z}^{(l)}\right)" in one and r"\sigma'\left(\mathbf{z}^{(L)}\right)" in one


def test_a_linear_network_has_no_slope_factor():
    text = any_depth("linear-221")
    assert r"\operatorname{id}'\left(" not in text and r"\operatorname{diag}\left(" not in text
    assert r"\boldsymbol{\delta}^{(l)} &= W^{(l + 1)\mathsf{T}} \boldsymbol{\delta}^{(l + 1)}" in text
    assert (r"\boldsymbol{\delta}^{(k)} &= \left(\prod_{l = k,\, \dots,\, L - 1} W^{(l + 1)\mathsf{T}}\right) "
            r"\boldsymbol{\delta}^{(L)}") in text
    assert "Here every layer is linear" in text
    rows = render_solution(solve(spec([2, 2, 1], ["linear", "linear"], convention="row")), "md")
    assert r"\boldsymbol{\delta}^{(l)} &= \boldsymbol{\delta}^{(l + 1)} W^{(l + 1)\mathsf{T}}" + "\n" in rows


def test_the_softmax_delta_of_the_matrix_form_ends_in_its_values():
    """δ_n of a softmax output has its numbers like every matrix line: one vector per sample, Δ's columns."""
    s = solve("softmax-233")
    text = render_solution(s, "md", doc=build(s, view=View(detail="full")))
    line = text[text.index(r"\boldsymbol{\delta}^{(2)}_{n} &="):]
    assert line.split("\n")[1] == r"&\approx \begin{bmatrix}0.285783\\-0.669140\\0.383357\end{bmatrix}"
    batch = solve(spec([2, 2, 3], ["sigmoid", "softmax"], loss="cross_entropy", samples=2,
                       y=[[1, 0, 0], [0, 0, 1]]))
    text = render_solution(batch, "md", doc=build(batch, view=View(detail="full")))
    values = text[text.index(r"\boldsymbol{\delta}^{(2)}_{n} &="):].split("\n")[1]
    assert values.count(r"\begin{bmatrix}") == 2 and values.endswith(r"\quad (n = 1, \dots, 2)")


def test_the_softmax_forward_pass_computes_every_net_input_before_the_outputs():
    text = section(render_solution(solve("softmax-233"), "md"), "## 3. Forward pass")
    output = text[text.index("Output layer (layer 2)"):]
    assert output.index("z_{o_{3}} &=") < output.index("o_{1} &=")


def test_the_verification_says_how_many_formulas_were_checked():
    s = solve("sigmoid-222")
    text = render_solution(s, "md", doc=build(s, view=View(detail="full")))
    doc_checks = checked.check_formulas(*_sections(solve("sigmoid-222")))
    assert doc_checks.formulas > 30 and doc_checks.evaluations >= doc_checks.formulas
    assert f"each of the {doc_checks.formulas} formulas of the general section" in text
    # short prints the formulas for any depth only, and checks those
    s, recursion, form, equations = _sections(solve("sigmoid-222"))
    any_depth = checked.check_formulas(s, (), None, equations)
    assert any_depth.formulas >= len(build(s).general.any_depth) and any_depth.recursion.formulas == 0
    assert f"each of the {any_depth.formulas} formulas of the general section (for any depth)" in \
        render_solution(s, "md")


def _sections(s):
    return s, formulas.layer_recursion(s.derivation), formulas.matrix_form(s.network), general_equations(s.network)


# -- a formula that does not hold is never printed ---------------------------------------------

def test_a_wrong_general_formula_stops_the_document(monkeypatch):
    """δ^(l) without the transpose of W^(l+1) has the right shape on a square layer and the wrong numbers."""
    def untransposed(w, l):
        spread = w.times(w.m(general.W, l + 1), w.m(general.DELTA, l + 1))
        return w.m(general.DELTA, l), sp.HadamardProduct(spread, w.m(general.FPRIME, l), evaluate=False)

    monkeypatch.setattr(general, "_hidden_delta", untransposed)
    with pytest.raises(checked.FormulaError, match="general formula the error signal δ of a hidden layer"):
        render_solution(solve("sigmoid-222"), "md")


def test_a_column_form_in_the_transposed_convention_stops_the_document(monkeypatch):
    """∂e/∂W = δ aᵀ (the column convention's) where W is stored in × out: on a square layer it has the stored
    shape and the wrong numbers (the transpose), and the check of the general formulas refuses it."""
    monkeypatch.setattr(general, "_weight_gradient", lambda w, l: (w.m(general.DW, l),
                                                                  w.times(w.m(general.DELTA, l), w.m(general.A, l - 1).T)))
    raw = spec([2, 2, 2], ["sigmoid", "sigmoid"], convention="transposed", samples=2)
    with pytest.raises(checked.FormulaError, match="general formula the weights' gradient"):
        render_solution(solve(raw), "md")
    monkeypatch.undo()
    assert r"\mathbf{a}^{(l - 1)} \boldsymbol{\delta}^{(l)\mathsf{T}}" in render_solution(solve(raw), "md")


@pytest.mark.parametrize("detail, message", [("full", "recursion formula"), ("short", "the short form of z_o")])
def test_a_wrong_recursion_formula_stops_the_document(monkeypatch, detail, message):
    """A wrong short form of the output δ (o + y for o − y) is caught by the recursion's check (full) or, where
    only the backward pass prints it (short), by the check of the formula there."""
    real = formulas.unit_short_delta
    monkeypatch.setattr(formulas, "unit_short_delta", lambda net, j: None if real(net, j) is None
                        else net.outputs[j] + net.targets[j])
    s = solve("softmax-233")
    with pytest.raises(checked.FormulaError, match=message):
        render_solution(s, "md", doc=build(s, view=View(detail=detail)))


@pytest.mark.parametrize("name, exact", [("linear-221", True), ("sigmoid-222", False)])
def test_the_general_check_keeps_its_tolerance_in_exact_and_float_arithmetic(monkeypatch, name, exact):
    """∂e/∂W^(l) scaled by 1 + 10⁻²⁵ is refused and by 1 + 10⁻⁴⁰ is not: the formulas are evaluated in numbers
    (Fractions where every value is exact, as linear-221's are, mpmath floats otherwise) to the same half of the
    working digits the check always compared to, neither rounded to doubles nor stricter."""
    real = general._weight_gradient

    def scaled(by):
        return lambda w, l: (real(w, l)[0], sp.MatMul(1 + sp.Rational(1, 10 ** by), real(w, l)[1]))

    s = solve(name)
    assert all(v.is_Rational for env in s.exact_first.samples for v in env.values()) == exact
    monkeypatch.setattr(general, "_weight_gradient", scaled(40))
    assert checked.check_general(general_equations(s.network), s.network, s.derivation, s.exact_first).formulas
    monkeypatch.setattr(general, "_weight_gradient", scaled(25))
    with pytest.raises(checked.FormulaError, match="general formula the weights' gradient"):
        checked.check_general(general_equations(s.network), s.network, s.derivation, s.exact_first)


def test_a_saturated_unit_leaves_two_general_formulas_unevaluable():
    """bce with o = 1 to every digit at the first sample: ∂e/∂a = (a − y) ∘ (a ∘ (1 − a))^∘−1 is 1/0 there, and
    δ = ∂e/∂a ∘ σ′(z) is ∞ · 0, nan (as SymPy's Mul gives it, not the 0 an entrywise product that skips zeros would
    compare): both counted as unevaluable, every other evaluation compared."""
    raw = tomllib.loads(example_text("bce-221"))
    raw["init"]["W2"] = [[500000.0, -400000.0]]
    raw["data"]["y"] = [[1e-06], [0.0]]
    s = solve(raw)
    tally = checked.check_general(general_equations(s.network), s.network, s.derivation, s.exact_first)
    assert (tally.unevaluable, tally.evaluations) == (2, 26)


def test_the_cli_refuses_in_one_line_and_writes_nothing(monkeypatch, tmp_path, capsys):
    from derive.cli import main

    monkeypatch.setattr(general, "_weight_gradient", lambda w, l: (w.m(general.DW, l), w.m(general.DW, l) * 2))
    assert main(["solve", "linear-221", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


# -- the general formulas against an independent loss ------------------------------------------

def _general_gradients(sol) -> dict[str, ImmutableMatrix]:
    """∂E/∂W^(l) from the printed equations alone: ∂e/∂a^(L), δ^(L), the unrolled δ^(k), δ a^ᵀ, summed.

    Only the forward values (x, z, a, y) and the parameters enter; no δ of the engine."""
    net, d, step = sol.network, sol.derivation, sol.training.first
    eqs = {e.key: e for e in general_equations(net)}
    numbers = {formulas.N: sp.Integer(sol.spec.samples), formulas.J: sp.Integer(sol.spec.layers[-1])}
    L = sol.spec.depth

    def run(key, layer, env, given):
        w = Writer(net, concrete=True)
        forms = eqs[key].at(w, sp.Integer(layer))
        values = {}
        for m, (family, at) in w.where.items():
            if m == forms[0]:           # the left-hand side: what is computed
                values[m] = ImmutableMatrix.zeros(*m.shape)
            elif family in (general.DELTA, general.DEDA, general.DW, general.DB):
                values[m] = given[family, at]           # never the engine's
            else:
                values[m] = checked._value(family, at, net, d, step, env)
        return [ImmutableMatrix(f.xreplace(numbers).xreplace(values).doit().as_explicit()) for f in forms]

    total: dict[str, ImmutableMatrix] = {}
    for env in step.samples:
        upstream = run("upstream", L, env, {})[1]
        top, *others = run("output", L, env, {(general.DEDA, L): upstream})[1:]
        for other in others:        # the short form (a − y over N …) is the same matrix
            assert all(abs(sp.N(u - v, 40)) < 1e-30 for u, v in zip(top, other))
        for k in range(1, L + 1):
            delta = top if k == L else run("closed", k, env, {(general.DELTA, L): top})[1]
            grad = run("weights", k, env, {(general.DELTA, k): delta})[1]
            total[f"W{k}"] = total[f"W{k}"] + grad if f"W{k}" in total else grad
    return total


@settings(max_examples=40, deadline=None, derandomize=True)
@given(networks())
def test_general_formulas_equal_central_differences_of_an_independent_loss(raw):
    """Random networks, both conventions, every bias type and loss: the printed general equations,
    evaluated layer by layer, give the gradient that central differences of an independently written
    loss give (to 20 digits)."""
    with mpmath.workdps(DIGITS):
        params = initial(raw)
        _, _, nets = forward(raw, params)
        assume(away_from_kinks(raw, nets))
        ours = _general_gradients(solve(raw))
        for name, index in entries(params):
            if not name.startswith("W"):
                continue
            fd = (forward(raw, moved(params, name, index, H))[0] - forward(raw, moved(params, name, index, -H))[0]) / (2 * H)
            got = mpmath.mpf(str(sp.N(ours[name][index], DIGITS)))
            assert abs(got - fd) <= mpmath.mpf(10) ** -20 * max(1, abs(fd)), (name, index, got, fd)


def test_the_full_matrix_form_of_a_linear_layer_has_no_slope_factor():
    """A linear layer's A is its Z and its Δ has no ⊙ id′(Z): the full document's matrix form, checked at the
    numbers, writes it as a teacher does (tanh then linear: the hidden layer keeps its slope)."""
    s = solve("linear-221")
    text = render_solution(s, "md", doc=build(s, view=View(detail="full")))
    assert r"\operatorname{id}" not in text.split("### Any number of layers")[0]
    assert "A^{(1)} &= Z^{(1)} \\\\\n&= \\begin{bmatrix}0.85\\\\0.48\\end{bmatrix}" in text
    assert "\\Delta^{(2)} &= \\frac{\\partial E}{\\partial A^{(2)}} \\\\\n&= \\begin{bmatrix}-0.809\\end{bmatrix}" in text
    assert "\\Delta^{(1)} &= W^{(2)\\mathsf{T}} \\Delta^{(2)} \\\\\n&= \\begin{bmatrix}-0.11326\\\\-0.12135" in text
    m = solve(spec([2, 2, 1], ["tanh", "linear"]))
    mixed = render_solution(m, "md", doc=build(m, view=View(detail="full")))
    matrices = mixed.split("### Any number of layers")[0]
    assert r"\tanh'\left(Z^{(1)}\right)" in matrices and r"\operatorname{id}" not in matrices


@pytest.mark.parametrize("by", [2, 1 + sp.Rational(1, 10 ** 25)])
def test_a_wrong_formula_is_refused_beside_a_saturated_unit(monkeypatch, by):
    """The saturated bce's ∂e/∂a is 10^16860 at the second sample: a tolerance from the largest value of the whole
    batch let a gradient twice too large pass there. The check's allowance for a difference of nearly equal
    numbers is now each entry's own magnitude (the formula at the absolute values of what it is made of)."""
    raw = tomllib.loads(example_text("bce-221"))
    raw["init"]["W2"] = [[500000.0, -400000.0]]
    raw["data"]["y"] = [[1e-06], [0.0]]
    s = solve(raw)
    real = general._weight_gradient
    monkeypatch.setattr(general, "_weight_gradient", lambda w, l: (real(w, l)[0], sp.MatMul(by, real(w, l)[1])))
    with pytest.raises(checked.FormulaError, match="general formula the weights' gradient"):
        checked.check_general(general_equations(s.network), s.network, s.derivation, s.exact_first)


@pytest.mark.parametrize("weight, known", [(8800.0, True), (8830.0, False)])
def test_a_true_division_beside_a_saturated_unit_is_not_refused(monkeypatch, weight, known):
    """bce's ∂e/∂a = (a − y)/(a(1 − a))/N with a = 1 − e^−8800: the engine's 3,840 digits know 1 − a to a few digits
    only, and the quotient (10^3821) as well. The allowance was the formula at the absolute values of its terms,
    about 1, and refused the true formula ("internal error", no document); it is now what the numbers carry through
    the division (``general.spread``). At 8800 a form twice too large is still refused; at 8830 the numbers know
    1 − a to less than a digit and cannot tell the two apart, so neither is refused."""
    raw = tomllib.loads(example_text("bce-221"))
    raw["init"]["W2"] = [[weight, weight]]
    raw["data"]["y"] = [[0.0], [0.0]]
    s = solve(raw)
    for detail in ("short", "full"):
        assert "Direct differentiation" in render_solution(s, "md", doc=build(s, view=View(detail=detail)))
    real = general._upstream
    monkeypatch.setattr(general, "_upstream", lambda w, l: (real(w, l)[0], sp.MatMul(2, real(w, l)[1])))
    equations = general_equations(s.network)
    if known:
        with pytest.raises(checked.FormulaError, match="general formula the derivative of one sample's loss"):
            checked.check_general(equations, s.network, s.derivation, s.exact_first)
    else:
        checked.check_general(equations, s.network, s.derivation, s.exact_first)
