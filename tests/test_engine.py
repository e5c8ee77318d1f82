"""The derived gradients against sympy.diff of the whole loss, written down here independently.

For each network the loss is built in this file from the spec's numbers and the textbook formulas
(σ = 1/(1 + e^−z), softmax = e^z/Σe^z, the DESIGN.md loss table), with the engine's parameter
symbols as unknowns; the engine's gradient (its adjoint recursion, with every named quantity
substituted away) must equal sympy.diff of that loss: the simplified difference is zero, and for
the transcendental cases the two also agree at random rational points to 50 digits.
"""

from __future__ import annotations

import copy
import random
from fractions import Fraction
from math import prod

import mpmath
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import Rounding, example_names, load, solve
from derive.check.claims import parse_expression
from derive.numeric.tape import _doubles, compile_gradient
from derive.numeric.values import evaluate, frozen

# -- an independent forward pass and loss -------------------------------------------------


def act(name: str, z: sp.Expr, slope: sp.Expr) -> sp.Expr:
    return {
        "linear": lambda: z,
        "sigmoid": lambda: 1 / (1 + sp.exp(-z)),
        "tanh": lambda: sp.tanh(z),
        "relu": lambda: sp.Piecewise((z, z > 0), (0, True)),
        "leaky_relu": lambda: sp.Piecewise((z, z > 0), (slope * z, True)),
        "softplus": lambda: sp.log(1 + sp.exp(z)),
    }[name]()


def loss(name: str, O: list[list[sp.Expr]], Y: list[list[sp.Expr]], N: int | None = None) -> sp.Expr:
    """The DESIGN.md table, literally; with N given, the terms of some of the N samples only."""
    N, J = N or len(O), len(O[0])
    pairs = [(o, y) for on, yn in zip(O, Y) for o, y in zip(on, yn)]
    sq = sp.Add(*((y - o) ** 2 for o, y in pairs))
    return {
        "half_sse": lambda: sq / 2,
        "sse": lambda: sq,
        "mse": lambda: sq / (N * J),
        "quadratic": lambda: sq / (2 * N),
        "bce": lambda: -sp.Rational(1, N * J) * sp.Add(*(y * sp.log(o) + (1 - y) * sp.log(1 - o) for o, y in pairs)),
        "cross_entropy": lambda: -sp.Rational(1, N) * sp.Add(*(y * sp.log(o) for o, y in pairs)),
    }[name]()


def whole_loss(sol, X, Y, N: int | None = None) -> sp.Expr:
    """E in the engine's parameter symbols, for inputs X and targets Y (numbers or symbols).

    With N given, X and Y are some of the N samples and the result their share of E.
    """
    spec, net = sol.spec, sol.network
    outputs = []
    for x in X:
        a = list(x)
        for l, name in enumerate(spec.activations):
            W, b = net.weights[l], net.biases[l]
            z = [sp.Add(*(W[j][k] * a[k] for k in range(len(a)))) + (b[j] if b else 0) for j in range(len(W))]
            if name == "softmax":
                total = sp.Add(*(sp.exp(zj) for zj in z))
                a = [sp.exp(zj) / total for zj in z]
            else:
                a = [act(name, zj, spec.slope) for zj in z]
        outputs.append(a)
    return loss(spec.loss, outputs, Y, N)


def engine_gradient(sol, X, Y, override=None) -> dict[sp.Symbol, sp.Expr]:
    """The engine's ∂E/∂p summed over the samples, every named intermediate substituted away."""
    net, d = sol.network, sol.derivation
    gradient = {**d.gradient, **(override or {})}
    total = {p: sp.S.Zero for p in net.parameters}
    for x, y in zip(X, Y):
        env = {**dict(zip(net.inputs, x)), **dict(zip(net.targets, y))}
        for s in net.order:
            env[s] = net.definitions[s].xreplace(env)
        for v in d.backward_order:
            env[d.adjoint[v]] = gradient[v].xreplace(env)
        for p in net.parameters:
            total[p] += env[d.adjoint[p]]
    return total


def is_zero(expr: sp.Expr) -> bool:
    """Zero as a rational function once every exp(·) and log(·) is replaced by a fresh unknown.

    Sound: if the rational function in those unknowns is identically zero, so is ``expr`` (the
    replacement is a substitution). exp(c·u) with an integer c becomes U**c, so e^{2z} = (e^z)².
    """
    table: dict[tuple[str, sp.Expr], sp.Dummy] = {}

    def atom(u: sp.Expr) -> sp.Expr:
        if isinstance(u, sp.log):
            return table.setdefault(("log", u.args[0]), sp.Dummy())
        c, arg = u.args[0].as_content_primitive()
        if arg.could_extract_minus_sign():
            c, arg = -c, -arg
        if not c.is_integer:
            c, arg = 1, c * arg
        return table.setdefault(("exp", arg), sp.Dummy()) ** c

    expr = expr.rewrite(sp.exp).replace(lambda u: isinstance(u, (sp.exp, sp.log)), atom)
    return sp.expand(sp.numer(sp.together(expr))) == 0


def close(a: sp.Expr, b: sp.Expr, digits: int = 50) -> bool:
    a, b = sp.N(a, digits + 10), sp.N(b, digits + 10)
    return abs(a - b) <= sp.Float(10) ** -digits * max(1, abs(a))


def random_point(symbols, rng: random.Random) -> dict[sp.Symbol, sp.Rational]:
    return {s: sp.Rational(rng.randint(-200, 200), rng.choice([50, 100, 300])) for s in symbols}


# -- the cases ------------------------------------------------------------------------------

def spec(layers, activation, loss, bias="neuron", x=None, y=None, **extra):
    raw = {"network": {"layers": layers, "activation": activation, "bias": bias, "loss": loss}, "init": {"seed": 3}}
    raw["data"] = {"x": x or [[0.5] * layers[0]], "y": y or [[0.5] * layers[-1]]}
    for key, value in extra.items():
        table = {"convention": "network", "slope": "network", "freeze": "train", "steps": "train",
                 "style": "notation"}[key]
        raw.setdefault(table, {})[key] = value
    return raw


TWO = {"x": [[1, -0.5], [0.25, 2]]}            # a batch of two samples, two inputs
SYMBOLIC = [   # one sample; inputs and targets stay symbols
    ("linear 2-2-1 none half_sse", spec([2, 2, 1], "linear", "half_sse", bias="none")),
    ("sigmoid 2-2-2 shared half_sse", spec([2, 2, 2], "sigmoid", "half_sse", bias="shared")),
    ("tanh 2-2-1 neuron mse", spec([2, 2, 1], ["tanh", "linear"], "mse")),
    ("softplus 1-2-1 neuron sse", spec([1, 2, 1], ["softplus", "softplus"], "sse")),
    ("sigmoid 2-2-1 neuron bce", spec([2, 2, 1], "sigmoid", "bce")),
    ("sigmoid 2-2-2 none cross_entropy", spec([2, 2, 2], "sigmoid", "cross_entropy", bias="none")),
    ("softmax 2-2-3 neuron cross_entropy", spec([2, 2, 3], ["tanh", "softmax"], "cross_entropy")),
    ("softmax 2-2-3 neuron mse", spec([2, 2, 3], ["tanh", "softmax"], "mse")),
    ("linear 1-1-1-1 shared quadratic", spec([1, 1, 1, 1], "linear", "quadratic", bias="shared")),
    ("row convention sigmoid 2-2-1 mse", spec([2, 2, 1], "sigmoid", "mse", convention="row")),
    ("a bias type per layer: none, neuron, shared", spec([2, 2, 2, 1], ["tanh", "sigmoid", "linear"], "half_sse",
                                                         bias=["none", "neuron", "shared"])),
]
BATCHED = [    # numeric data, a batch of samples
    ("tanh/sigmoid 2-2-1 shared mse batch", spec([2, 2, 1], ["tanh", "sigmoid"], "mse", bias="shared",
                                                  y=[[0.2], [0.9]], **TWO)),
    ("sigmoid 2-2-1 neuron bce batch", spec([2, 2, 1], "sigmoid", "bce", y=[[0], [1]], **TWO)),
    ("softmax 2-1-2 shared cross_entropy batch", spec([2, 1, 2], ["sigmoid", "softmax"], "cross_entropy",
                                                      bias="shared", y=[[1, 0], [0.3, 0.7]], **TWO)),
    ("softmax 2-2-3 shared half_sse batch", spec([2, 2, 3], ["sigmoid", "softmax"], "half_sse", bias="shared",
                                                 y=[[1, 0, 0], [0.2, 0.3, 0.5]], **TWO)),
    ("softplus/linear 2-2-2 none quadratic batch", spec([2, 2, 2], ["softplus", "linear"], "quadratic",
                                                         bias="none", y=[[1, 0], [-1, 2]], **TWO)),
    ("sigmoid 1-2-1-1 neuron half_sse, three layers", spec([1, 2, 1, 1], ["sigmoid", "tanh", "sigmoid"],
                                                          "half_sse", x=[[0.3], [-0.7]], y=[[0.1], [0.8]])),
    ("sigmoid rows frozen sse batch", spec([2, 2, 1], "sigmoid", "sse", convention="row", freeze=["W1", "b2"],
                                           y=[[0.4], [0.6]], **TWO)),
]
PIECEWISE = [  # ReLU and leaky ReLU: rational everywhere, compared exactly at random points
    ("relu 2-3-1 neuron quadratic batch", spec([2, 3, 1], ["relu", "linear"], "quadratic", y=[[1], [0]], **TWO)),
    ("leaky_relu 2-2-2 shared sse", spec([2, 2, 2], ["leaky_relu", "relu"], "sse", bias="shared", slope="1/10")),
    ("leaky_relu default slope 1-2-1 none half_sse", spec([1, 2, 1], ["leaky_relu", "linear"], "half_sse",
                                                          bias="none", x=[[1], [-2]], y=[[1], [3]])),
]


def data(sol, symbolic: bool):
    net, spec = sol.network, sol.spec
    if symbolic:
        return [list(net.inputs)], [list(net.targets)]
    return [list(r) for r in spec.x], [list(r) for r in spec.y]


@pytest.mark.parametrize("raw", [c[1] for c in SYMBOLIC + BATCHED], ids=[c[0] for c in SYMBOLIC + BATCHED])
def test_gradient_equals_sympy_diff_of_the_whole_loss(raw):
    """Symbolically for one generic sample (its share of E, with the batch's N in the scale), then
    numerically for the whole batch at random rational parameters, to 50 digits."""
    sol = solve(raw)
    N = len(sol.spec.x)
    X, Y = data(sol, symbolic=True)
    E = whole_loss(sol, X, Y, N)
    derived = engine_gradient(sol, X, Y)
    for p in sol.network.parameters:
        assert is_zero(derived[p] - sp.diff(E, p)), p

    X, Y = data(sol, symbolic=False)
    E = whole_loss(sol, X, Y)
    derived = engine_gradient(sol, X, Y)
    rng = random.Random(7)
    for _ in range(3):
        point = random_point(sol.network.parameters, rng)
        for p in sol.network.parameters:
            assert close(derived[p].xreplace(point), sp.diff(E, p).xreplace(point)), (p, point)


@pytest.mark.parametrize("raw", [c[1] for c in PIECEWISE], ids=[c[0] for c in PIECEWISE])
def test_piecewise_gradient_equals_sympy_diff_at_random_points(raw):
    sol = solve(raw)
    X, Y = data(sol, symbolic=False)
    E = whole_loss(sol, X, Y)
    derived = engine_gradient(sol, X, Y)
    rng = random.Random(11)
    params = sol.network.parameters
    checked = 0
    while checked < 25:
        point = random_point(params, rng)
        nets = [z for z in _net_values(sol, point)]
        if any(z == 0 for z in nets):           # at a kink sympy and the contract may differ
            continue
        for p in params:
            got, want = derived[p].xreplace(point), sp.diff(E, p).xreplace(point)
            assert got.is_Rational and got == want, (p, point)
        checked += 1


def _net_values(sol, point):
    """Every net input of every sample at ``point`` (to stay off the kinks)."""
    net = sol.network
    for x in sol.spec.x:
        env = {**point, **dict(zip(net.inputs, x))}
        for s in net.order[:-1]:
            env[s] = net.definitions[s].xreplace(env)
        yield from (env[z] for layer in net.nets for z in layer)


def test_relu_derivative_at_zero_is_zero():
    """The contract's choice: ReLU'(0) = 0, so a unit with z = 0 passes no gradient back."""
    sol = solve(spec([1, 1, 1], ["relu", "linear"], "half_sse", bias="none", x=[[1]], y=[[1]]) |
                {"init": {"W1": [[0]], "W2": [[2]]}})
    g = sol.training.first.gradient
    w1, w2 = sol.network.parameters
    # z_h = 0·1 = 0, h = 0, o = 0; ∂E/∂w2 = (o − y)·h = 0 and ∂E/∂w1 = (o − y)·w2·ReLU'(0)·x = 0
    assert g[w1] == 0 and g[w2] == 0
    leaky = solve(spec([1, 1, 1], ["leaky_relu", "linear"], "half_sse", bias="none", x=[[1]], y=[[1]], slope="1/4")
                  | {"init": {"W1": [[0]], "W2": [[2]]}})
    # the leaky slope is used at 0: ∂E/∂w1 = (0 − 1)·2·(1/4)·1
    assert leaky.training.first.gradient[leaky.network.parameters[0]] == sp.Rational(-1, 2)


# -- the structure of the derivation ---------------------------------------------------------

def test_the_zero_test_sees_a_wrong_gradient():
    """The check above is not vacuous: σ' written as σ(1 + σ), or a slightly wrong scale, fail it."""
    sol = solve(SYMBOLIC[1][1])
    X, Y = data(sol, symbolic=True)
    E = whole_loss(sol, X, Y)
    w1 = sol.network.parameters[0]
    right = engine_gradient(sol, X, Y)[w1]
    assert is_zero(right - sp.diff(E, w1))
    assert not is_zero(right * sp.Rational(1001, 1000) - sp.diff(E, w1))
    net, d = sol.network, sol.derivation
    h1, z_h1 = net.activations[0][0], net.nets[0][0]
    wrong = {z_h1: d.gradient[z_h1].xreplace({1 - h1: 1 + h1})}
    assert wrong[z_h1] != d.gradient[z_h1]
    assert not is_zero(engine_gradient(sol, X, Y, wrong)[w1] - sp.diff(E, w1))


def test_sum_over_chains_equals_the_recursion():
    """``expanded`` (Σ over chains of products of local factors) is the same derivative."""
    for raw in (SYMBOLIC[1][1], SYMBOLIC[6][1]):
        sol = solve(raw)
        net, d = sol.network, sol.derivation
        X, Y = data(sol, symbolic=True)
        E = whole_loss(sol, X, Y)
        env = {**dict(zip(net.inputs, X[0])), **dict(zip(net.targets, Y[0]))}
        for s in net.order:
            env[s] = net.definitions[s].xreplace(env)
        for p in net.parameters:
            assert is_zero(d.expanded(p).xreplace(env) - sp.diff(E, p)), p


@pytest.mark.parametrize("layers, activation, counts", [
    # chains from E to a weight of layer l: the product of the widths of the later layers ...
    ([2, 3, 2, 2], "sigmoid", [2 * 2, 2, 1]),
    ([1, 2, 1], "tanh", [1, 1]),
    # ... and a softmax output multiplies by J once more (each output depends on every z)
    ([2, 3, 3], ["sigmoid", "softmax"], [3 * 3, 3]),
])
def test_path_count(layers, activation, counts):
    loss = "cross_entropy" if activation[-1] == "softmax" else "half_sse"
    sol = solve(spec(layers, activation, loss, bias="none"))
    d = sol.derivation
    for l, layer in enumerate(sol.network.weights):
        w = layer[0][0]
        assert d.path_count(w) == counts[l] == len(d.chains(w))
        assert all(chain[0].child == sol.network.loss and chain[-1].parent == w for chain in d.chains(w))


def test_local_factors_are_named_quantities():
    """σ' appears as a(1 − a) of the unit's own activation, and ∂z/∂w as the input it multiplies."""
    sol = solve("sigmoid-222")
    net = sol.network
    h1, o1 = net.activations[0][0], net.activations[1][0]
    z_h1, z_o1 = net.nets[0][0], net.nets[1][0]
    w1, w5 = net.weights[0][0][0], net.weights[1][0][0]
    assert net.local(h1, z_h1) == h1 * (1 - h1)
    assert net.local(z_o1, w5) == h1 and net.local(z_o1, h1) == w5
    assert net.local(z_h1, w1) == net.inputs[0]
    assert net.local(z_h1, net.biases[0][0]) == 1
    assert net.local(z_o1, w1) == 0
    assert set(net.parents(z_o1)) == {h1, net.activations[0][1], w5, net.weights[1][0][1], net.biases[1][0]}


def test_shared_bias_sums_over_the_units_of_its_layer():
    sol = solve("sigmoid-222")
    net, d = sol.network, sol.derivation
    b2 = net.biases[1][0]
    assert [e.child for e in d.edges[b2]] == list(net.nets[1])
    assert d.gradient[b2] == sp.Add(*(d.adjoint[z] for z in net.nets[1]))


# -- updates and frozen parameters ----------------------------------------------------------

def test_update_is_one_gradient_step_and_frozen_parameters_stay():
    raw = spec([2, 2, 1], "sigmoid", "mse", bias="neuron", freeze=["W1", "b2", "w5"], y=[[0.1], [0.8]], **TWO)
    sol = solve(raw)
    step, net = sol.training.first, sol.network
    names = {net.names[p].plain: p for p in net.parameters}
    # W1 is the first layer's matrix; b2 and w5 are the names the document shows (sequential style:
    # b2 is the second hidden unit's bias, not layer 2's biases)
    fixed = {p for row in net.weights[0] for p in row} | {names["b2"], names["w5"]}
    assert frozen(sol.derivation) == fixed
    rate = sp.Rational(1, 10)                            # the default learning rate
    for p in net.parameters:
        want = step.parameters[p] if p in fixed else step.parameters[p] - rate * step.gradient[p]
        assert step.updated[p] == want
        assert step.gradient[p] != 0                     # frozen parameters still report a gradient


def test_freezing_a_whole_bias_layer_by_its_name():
    """In the indexed style biases are b1_1, b1_2, …, so ``b1`` can only mean layer 1's biases."""
    sol = solve(spec([2, 2, 1], "sigmoid", "mse", freeze=["b1", "w2_11"], style="indexed"))
    net = sol.network
    assert frozen(sol.derivation) == set(net.biases[0]) | {net.weights[1][0][0]}
    shared = solve(spec([2, 2, 1], "sigmoid", "mse", bias="shared", freeze=["b2"]))
    assert frozen(shared.derivation) == {shared.network.biases[1][0]}


def test_frozen_parameters_stay_fixed_over_many_steps():
    sol = solve(spec([2, 2, 2], "sigmoid", "half_sse", bias="shared", freeze=["b1", "b2", "w3"], steps=50))
    final, first = sol.training.final, sol.training.first.parameters
    for p in frozen(sol.derivation):
        assert final[p] == float(first[p])
    assert any(final[p] != float(first[p]) for p in sol.network.parameters)


def test_exact_multi_step_matches_the_float_path():
    """Steps 2 … 4 run on compiled floats; redoing them exactly gives the same losses."""
    from derive.numeric.values import evaluate

    sol = solve(spec([2, 2, 1], ["tanh", "sigmoid"], "bce", y=[[0], [1]], steps=4, **TWO))
    d, history = sol.derivation, sol.training.history
    params = sol.training.first.parameters
    exact = []
    for _ in range(5):
        step = evaluate(d, params)
        exact.append(step.loss)
        params = step.updated
    assert len(history) == 5
    for got, want in zip(history, exact):
        assert abs(got - float(want)) <= 1e-12 * abs(float(want))
    for p in d.network.parameters:
        assert abs(sol.training.final[p] - float(step.parameters[p])) <= 1e-12


def test_compiled_gradient_matches_the_exact_one():
    sol = solve("softmax-233")
    net, step = sol.network, sol.training.first
    g = compile_gradient(sol.derivation)
    p = [float(step.parameters[q]) for q in net.parameters]
    e, grads = g(p, [float(v) for v in sol.spec.x[0]], [float(v) for v in sol.spec.y[0]])
    assert abs(e - float(step.loss)) < 1e-14
    for q, gq in zip(net.parameters, grads):
        assert abs(gq - float(step.gradient[q])) < 1e-14


# -- published numbers ------------------------------------------------------------------------

def by_name(sol, values):
    return {sol.network.names[p].plain: v for p, v in values.items()}


def test_seed_1_numbers_exactly():
    """hmkcode's 2-2-1 linear network: every number of the post, as exact decimals."""
    sol = solve("linear-221")
    first, after = sol.training.first, sol.training.after
    R = lambda s: sp.Rational(Fraction(s))  # noqa: E731
    o, E = sol.network.outputs[0], sol.network.loss
    assert first.samples[0][o] == R("0.191")
    assert first.samples[0][sol.derivation.adjoint[o]] == R("-0.809")          # Δ = prediction − actual
    assert first.samples[0][sol.derivation.adjoint[sol.network.nets[-1][0]]] == R("-0.809")
    assert first.loss == R("0.809") ** 2 / 2
    updated = by_name(sol, first.updated)
    assert [updated[f"w{i}"] for i in range(1, 7)] == [R(s) for s in
                                                       "0.121326 0.226989 0.132135 0.0982025 0.1743825 0.169416".split()]
    assert after.samples[0][o] == R("0.2557457808075")
    assert sol.json()["new_outputs"] == [[0.2557457808075]]


# Matt Mazur, "A Step by Step Backpropagation Example" (2015), as printed (rounded) in the post
MAZUR = {"w5": "0.35891648", "w6": "0.408666186", "w7": "0.511301270", "w8": "0.561370121",
         "w1": "0.149780716", "w2": "0.19956143", "w3": "0.24975114", "w4": "0.29950229"}


def agrees(value, printed: str) -> bool:
    """``value`` rounds to the printed decimal (half a unit of its last place)."""
    places = len(printed.split(".")[1])
    return abs(sp.Rational(Fraction(printed)) - value) <= sp.Rational(1, 2 * 10 ** places)


def test_mazur_published_numbers():
    sol = solve("sigmoid-222")
    first = sol.training.first
    o1, o2 = sol.network.outputs
    assert agrees(first.samples[0][o1], "0.75136507")
    assert agrees(first.samples[0][o2], "0.772928465")
    assert agrees(first.loss, "0.298371109")
    updated = by_name(sol, first.updated)
    for name, printed in MAZUR.items():
        assert agrees(updated[name], printed), name
    assert updated["b1"] == sp.Rational(35, 100) and updated["b2"] == sp.Rational(60, 100)   # not trained


def test_mazur_error_after_ten_thousand_steps():
    """"After repeating this process 10,000 times … the error plummets to 0.0000351085": the error
    at the start of the 10,000th step, i.e. after 9,999 updates (biases frozen as in the post)."""
    raw = copy.deepcopy(dict(load("sigmoid-222").raw))
    assert raw["train"]["freeze"] == ["b1", "b2"]
    raw["train"]["steps"] = 10_000
    sol = solve(raw)
    history = sol.training.history
    assert len(history) == 10_001
    assert agrees(sp.Float(history[9999], 20), "0.0000351085")


def test_decimals_are_exact():
    """0.1 is 1/10 whether it comes from TOML, a Python float, a string or a fraction string."""
    from derive import loads

    toml = loads('[network]\nlayers = [1, 1]\n[data]\nx = [0.1]\ny = [0.3]\n[init]\nW1 = [[0.7]]\n'
                 '[train]\nlearning_rate = 0.1\n')
    as_dict = solve({"network": {"layers": [1, 1]}, "data": {"x": [0.1], "y": [0.3]}, "init": {"W1": [[0.7]]},
                     "train": {"learning_rate": 0.1}}).spec
    keywords = solve(layers=[1, 1], x=["1/10"], y=["0.3"], W1=[["7/10"]], learning_rate="1/10").spec
    for s in (toml, as_dict, keywords):
        assert s.x == ((sp.Rational(1, 10),),) and s.y == ((sp.Rational(3, 10),),)
        assert s.weights == (((sp.Rational(7, 10),),),) and s.learning_rate == sp.Rational(1, 10)
    # sigmoid(0.07) is irrational: kept to 60 digits, not rounded through a double
    z = solve(as_dict).training.first.samples[0]
    o = z[solve(as_dict).network.outputs[0]]
    assert abs(o - 1 / (1 + sp.exp(-sp.Rational(7, 100)))) < sp.Float(10) ** -55


def test_linear_network_values_stay_rational():
    sol = solve(spec([2, 3, 2], "linear", "mse", y=[[0.1, 0.2], [0.3, 0.4]], **TWO))
    step = sol.training.first
    assert step.loss.is_Rational
    assert all(v.is_Rational for v in step.gradient.values())
    assert all(v.is_Rational for v in step.updated.values())


def test_divergence_names_the_step_where_the_loss_overflows():
    """E = ½w² with x = 1, y = 0 and η = 3: w ← w − 3w = −2w, so after k steps w = (−2)^k and
    the loss ½·4^k = 2^(2k−1). After step 512 it is 2^1023, a double although w² = 2^1024 is
    not (the step is redone in mpmath); after step 513 it is 2^1025, beyond every double."""
    from derive import SpecError

    raw = {"network": {"layers": [1, 1], "activation": "linear"}, "data": {"x": [1], "y": [0]},
           "init": {"W1": [[1]]}, "train": {"learning_rate": 3, "steps": 600}}
    with pytest.raises(SpecError, match=r"\[train\]\.learning_rate: after step 513 the loss is no longer"):
        solve(raw).training
    raw["train"]["steps"] = 512
    history = solve(raw).training.history
    assert history[:4] == (0.5, 2.0, 8.0, 32.0) and history[512] == 2.0 ** 1023


class NetworkNames:
    """The claim parser's vocabulary for reading the JSON's formulas back: plain names are the network's symbols."""

    def __init__(self, plain: dict[str, sp.Symbol]):
        self.plain = plain

    def symbol(self, ref, in_sum):
        for name, index in ref.spellings:
            if name in self.plain and not index and not ref.prime:
                return self.plain[name]
        raise KeyError(ref.text)

    def derivative(self, loss, ref, in_sum):
        raise KeyError(ref.text)


@pytest.mark.parametrize("name", ["sigmoid-222", "softmax-233", "relu-231", "sigmoid-451-batch"])
def test_json_factors_are_the_local_derivatives(name):
    """Every ``factors`` entry is ∂child/∂parent of the child's own definition (sympy.diff, not the
    engine's reading of coefficients), and its per-sample value is that derivative at the sample."""
    sol = solve(name)
    out, net, names = sol.json(), sol.network, sol.derivation.names
    plain = {names[s].plain: s for s in (*net.order, *net.parameters, *net.inputs, *net.targets)}
    assert out["factors"], name
    for key, formula in out["factors"].items():
        child, parent = (plain[part[1:]] for part in key.split("/"))
        direct = sp.diff(net.definitions[child], parent)
        # the factor is written in the unit's a (σ′ = a(1 − a)); put each a's definition in
        activations = {a: net.definitions[a] for layer in net.activations for a in layer}
        written = parse_expression(formula, NetworkNames(plain)).expr.xreplace(activations)
        assert is_zero(direct.xreplace(activations) - written), key
        for env, values in zip(sol.training.first.samples, out["factor_values"]):
            assert values[key] == pytest.approx(float(direct.xreplace(env).evalf(30)), rel=1e-13, abs=1e-300), key
    # and a parameter's gradient is the sum over its chains of the products of the factors
    d = sol.derivation
    for p in net.parameters:
        chains = d.chains(p)
        for env, values in zip(sol.training.first.samples, out["factor_values"]):
            total = sum(prod(values[f"d{names[e.child].plain}/d{names[e.parent].plain}"] for e in chain)
                        for chain in chains)
            assert total == pytest.approx(float(env[d.adjoint[p]]), rel=1e-12, abs=1e-15)


# -- carried rounding: a hand calculation with six significant digits ------------------------------

def test_carried_rounding_is_mazurs_calculation_by_hand_with_six_digits():
    """Mazur's network worked as by hand: every value rounded to 6 significant digits (half away
    from zero) as it is written down, then used rounded. Written here with decimal.Decimal, apart
    from the engine: the engine's carried values must be these numbers exactly."""
    from decimal import ROUND_HALF_UP, Decimal, localcontext

    def r(v: Decimal) -> Decimal:                       # 6 significant digits, half away from zero
        return v.quantize(Decimal(1).scaleb(v.adjusted() - 5), rounding=ROUND_HALF_UP) if v else v

    def sigma(z: Decimal) -> Decimal:
        with localcontext() as c:
            c.prec = 50
            return r(1 / (1 + (-z).exp()))

    D = Decimal
    x1, x2, t1, t2, b1, b2, eta = D("0.05"), D("0.10"), D("0.01"), D("0.99"), D("0.35"), D("0.60"), D("0.5")
    w = {i: D(v) for i, v in enumerate(["0.15", "0.20", "0.25", "0.30", "0.40", "0.45", "0.50", "0.55"], 1)}
    with localcontext() as c:
        c.prec = 50                                     # products of two 6-digit numbers stay exact
        h1, h2 = sigma(r(w[1] * x1 + w[2] * x2 + b1)), sigma(r(w[3] * x1 + w[4] * x2 + b1))
        o1, o2 = sigma(r(w[5] * h1 + w[6] * h2 + b2)), sigma(r(w[7] * h1 + w[8] * h2 + b2))
        E = r(r(D("0.5") * r((t1 - o1) ** 2)) + r(D("0.5") * r((t2 - o2) ** 2)))
        d1, d2 = r(r(o1 - t1) * r(o1 * (1 - o1))), r(r(o2 - t2) * r(o2 * (1 - o2)))
        g = {5: r(d1 * h1), 6: r(d1 * h2), 7: r(d2 * h1), 8: r(d2 * h2)}
        dh1, dh2 = r(r(d1 * w[5] + d2 * w[7]) * r(h1 * (1 - h1))), r(r(d1 * w[6] + d2 * w[8]) * r(h2 * (1 - h2)))
        g |= {1: r(dh1 * x1), 2: r(dh1 * x2), 3: r(dh2 * x1), 4: r(dh2 * x2)}
        new = {i: r(w[i] - eta * g[i]) for i in w}

    sol = solve("sigmoid-222", carry=6)
    step, names = sol.training.first, sol.derivation.names
    by = {names[p].plain: p for p in sol.network.parameters}
    env = step.samples[0]
    assert [env[sol.symbol(n)] for n in ("h1", "h2", "o1", "o2")] == [sp.Rational(str(v)) for v in (h1, h2, o1, o2)]
    assert step.loss == sp.Rational(str(E))
    assert {i: step.gradient[by[f"w{i}"]] for i in w} == {i: sp.Rational(str(v)) for i, v in g.items()}
    assert {i: step.updated[by[f"w{i}"]] for i in w} == {i: sp.Rational(str(v)) for i, v in new.items()}
    # and the hand calculation stays within rounding of the exact one
    exact_step = solve("sigmoid-222").training.first
    assert all(abs(step.gradient[p] - exact_step.gradient[p]) < 1e-6 for p in sol.network.parameters)


def test_an_initial_loss_beyond_doubles_is_blamed_on_the_initial_values():
    """x = 10¹² through 30 linear layers of weight 10¹²: the output is 10³⁷², E = ½(10³⁷² − 1)² ≈ 5·10⁷⁴³,
    beyond every double before any step is taken, whatever the learning rate."""
    from derive import SpecError

    raw = {"network": {"layers": [1] * 31, "activation": "linear"}, "data": {"x": [[1e12]], "y": [[1]]},
           "init": {f"W{l}": [[1e12]] for l in range(1, 31)}, "train": {"learning_rate": 1e-12, "steps": 3}}
    with pytest.raises(SpecError, match=r"\[init\]: the initial loss is about 5.0e743, beyond double precision"):
        solve(raw).training


def test_the_careful_tape_agrees_on_finite_real_values_only():
    """Two precisions that both lose 1 − o give the same infinity, or a complex logarithm of a negative
    rounding error; neither may end the escalation as if it were the value (mpc crashed float() before)."""
    assert _doubles(mpmath.mpf(2), [mpmath.mpf("0.5"), 0]) == (2.0, [0.5, 0.0])
    assert _doubles(mpmath.mpf("inf"), [mpmath.mpf(1)]) is None
    assert _doubles(mpmath.mpf(1), [mpmath.mpc(1, 1e-30)]) is None
    assert _doubles(mpmath.mpf("1e400"), []) is None          # finite in mpmath, beyond doubles
    assert _doubles(None, []) is None


@pytest.mark.parametrize("carry", [None, Rounding(2, decimals=True)], ids=["exact", "carried"])
@pytest.mark.parametrize("name", example_names())
def test_the_forward_pass_after_an_update_is_the_full_steps_forward_pass(name, carry):
    """Training.after runs the forward pass alone: its values, loss and rounding marks are those of a whole step
    (backward pass included) taken at the updated parameters."""
    sol = solve(name, carry=carry)
    d, after = sol.derivation, sol.training.after
    full = evaluate(d, sol.training.first.updated, carry)
    assert after.parameters == full.parameters and after.loss == full.loss and after.objective == full.objective
    for n, (env, whole) in enumerate(zip(after.samples, full.samples)):
        assert {s: env[s] for s in sol.network.order} == {s: whole[s] for s in sol.network.order}, n
        assert not set(env) & {d.adjoint[v] for v in d.backward_order} - {sp.S.One}
    assert [r & set(sol.network.order) for r in after.rounded] == [r & set(sol.network.order) for r in full.rounded]


# -- the transposed convention: the third seed's W stored input × output, used as Wᵀ ------------------

def transpose(M: list[list]) -> list[list]:
    return [list(c) for c in zip(*M)]


# the third seed's example as it was before it took the transposed convention: W1 5×4 and W2 1×5, out × in
SEED3_COLUMN_INIT = {"W1": [[0.1, 0.2, -0.1, 0.3], [0.4, -0.2, 0.1, 0.2], [-0.3, 0.1, 0.2, 0.1], [0.2, 0.3, -0.2, -0.1],
                            [0.1, -0.1, 0.3, 0.2]],
                     "b1": 0.1, "W2": [[0.3, -0.2, 0.4, 0.1, 0.2]], "b2": 0.2}


def seed3_column() -> dict:
    """sigmoid-451-batch as the column convention writes it (the example before it stored W as the article)."""
    raw = copy.deepcopy(dict(load("sigmoid-451-batch").raw))
    raw["network"]["convention"] = "column"
    raw["init"] = copy.deepcopy(SEED3_COLUMN_INIT)
    return raw


def as_transposed(raw: dict) -> dict:
    """The same network in the transposed convention: every W given input × output (the column one's transpose)."""
    out = copy.deepcopy(raw)
    out["network"]["convention"] = "transposed"
    out["init"] = {k: transpose(v) if k.startswith("W") else v for k, v in raw["init"].items()}
    return out


def same_up_to_transpose(column: dict, transposed: dict) -> None:
    """Every parameter table of the JSON equal exactly, each W of ``transposed`` the transpose of ``column``'s."""
    for key in ("gradients", "updated", "parameters", "final"):
        assert column[key].keys() == transposed[key].keys(), key
        for p, value in column[key].items():
            assert transposed[key][p] == (transpose(value) if p.startswith("W") else value), (key, p)
    for key in ("outputs", "loss", "history"):
        assert transposed[key] == column[key], key


def test_the_third_seed_stored_as_in_the_article_has_the_same_numbers_transposed():
    """The built-in example now stores W1 4×5 and W2 5×1 as Neha Seth does; its outputs, loss, gradients,
    updates and history are the column spec's exactly, each W and ∂E/∂W transposed."""
    old, new = solve(seed3_column()), solve("sigmoid-451-batch")
    assert new.spec.convention == "transposed"
    for W in ("W1", "W2"):            # W1 4×5 and W2 5×1 in the file
        assert [[float(v) for v in row] for row in new.spec.raw["init"][W]] == transpose(SEED3_COLUMN_INIT[W])
    a, b = old.json(), new.json()
    assert [len(b["gradients"]["W1"]), len(b["gradients"]["W1"][0])] == [4, 5]
    assert [len(b["gradients"]["W2"]), len(b["gradients"]["W2"][0])] == [5, 1]
    same_up_to_transpose(a, b)
    # and exactly, beyond doubles: the exact first step's values, weight by weight
    for l, layer in enumerate(old.network.weights):
        for j, row in enumerate(layer):
            for k, w in enumerate(row):
                v = new.network.weights[l][j][k]
                for step in ("gradient", "updated"):
                    assert getattr(old.training.first, step)[w] == getattr(new.training.first, step)[v], (l, j, k)


@st.composite
def small_networks(draw) -> dict:
    """1 or 2 hidden layers of 1 to 3 units, sigmoid, tanh or ReLU, any bias, 1 to 3 samples, column convention."""
    layers = [draw(st.integers(1, 3)) for _ in range(draw(st.integers(2, 3)))] + [draw(st.integers(1, 2))]
    acts = [draw(st.sampled_from(["sigmoid", "tanh", "relu"])) for _ in layers[1:]]
    bias = draw(st.sampled_from(["neuron", "shared", "none"]))
    samples = draw(st.integers(1, 3))

    def number() -> float:
        return draw(st.integers(-90, 90)) / 100

    init: dict = {}
    for l in range(1, len(layers)):
        init[f"W{l}"] = [[number() for _ in range(layers[l - 1])] for _ in range(layers[l])]
        if bias != "none":
            init[f"b{l}"] = [number() for _ in range(layers[l])] if bias == "neuron" else number()
    return {"network": {"layers": layers, "activation": acts, "bias": bias, "loss": draw(st.sampled_from(["half_sse", "mse"])),
                        "convention": "column"},
            "data": {"x": [[number() for _ in range(layers[0])] for _ in range(samples)],
                     "y": [[number() for _ in range(layers[-1])] for _ in range(samples)]},
            "init": init, "train": {"learning_rate": 0.5, "steps": draw(st.integers(1, 3))}}


@settings(max_examples=30, deadline=None, derandomize=True)
@given(small_networks())
def test_the_transposed_convention_is_the_column_one_with_every_w_transposed(raw):
    """A network given with W out × in (column) and again with W in × out (transposed): the same numbers, the
    JSON's W and ∂E/∂W transposed, exactly."""
    same_up_to_transpose(solve(raw).json(), solve(as_transposed(raw)).json())
