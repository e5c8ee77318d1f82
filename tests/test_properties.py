"""Property tests: on random small networks the gradients agree with central finite differences of
a loss computed here, independently of the engine (mpmath, 50 digits, straight from the spec's
numbers), and the compiled float path agrees with the exact one."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from derive import solve
from derive.check import check_claims
from derive.errors import SpecError
from derive.numeric.rounding import number, round_significant
from derive.numeric.tape import compile_gradient
from derive.numeric.values import evaluate
from derive.text.render import render_solution

ELEMENTWISE = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu"]
DIGITS = 50
H = mpmath.mpf(10) ** -20          # central differences: error ~H² ≈ 1e-40, rounding ~1e-50/H = 1e-30


# -- random specs --------------------------------------------------------------------------------

def decimal(draw, low: int = -100, high: int = 100, places: int = 2) -> str:
    """A random decimal written as text (exact in the spec), like "-0.37"."""
    n = draw(st.integers(low, high))
    return str(Fraction(n, 10 ** places)) if draw(st.booleans()) else f"{n / 10 ** places:.{places}f}"


def architecture(draw, max_depth: int) -> tuple[list[int], list[str], str, str]:
    """Layers, activations, a loss the output can feed (bce: sigmoid; cross-entropy: softmax or sigmoid), biases."""
    depth = draw(st.integers(1, max_depth))
    layers = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    loss = draw(st.sampled_from(["half_sse", "sse", "mse", "quadratic", "bce", "cross_entropy"]))
    acts = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth)]
    if loss == "bce":
        acts[-1] = "sigmoid"
    elif loss == "cross_entropy":
        acts[-1] = draw(st.sampled_from(["softmax", "sigmoid"]))
    bias = draw(st.sampled_from(["none", "neuron", "shared"]))
    return layers, acts, loss, bias


IN_BY_OUT = ("row", "transposed")       # the conventions that store W input × output


@st.composite
def networks(draw) -> dict:
    layers, acts, loss, bias = architecture(draw, 3)
    convention = draw(st.sampled_from(["column", "row", "transposed"]))
    samples = draw(st.integers(1, 3))
    unit = loss in ("bce", "cross_entropy")         # targets in [0, 1]
    x = [[decimal(draw, -200, 200) for _ in range(layers[0])] for _ in range(samples)]
    y = [[decimal(draw, 0 if unit else -100, 100) for _ in range(layers[-1])] for _ in range(samples)]
    init: dict = {}
    for l in range(1, len(layers)):
        rows, cols = layers[l], layers[l - 1]
        W = [[decimal(draw) for _ in range(cols)] for _ in range(rows)]
        init[f"W{l}"] = [list(c) for c in zip(*W)] if convention in IN_BY_OUT else W
        if bias == "neuron":
            init[f"b{l}"] = [decimal(draw) for _ in range(rows)]
        elif bias == "shared":
            init[f"b{l}"] = decimal(draw)
    network = {"layers": layers, "activation": acts, "bias": bias, "loss": loss, "convention": convention}
    if "leaky_relu" in acts and draw(st.booleans()):
        network["slope"] = decimal(draw, 1, 50)
    return {"network": network, "data": {"x": x, "y": y}, "init": init,
            "train": {"learning_rate": decimal(draw, 1, 50), "steps": draw(st.integers(1, 4))}}


# -- the independent loss ------------------------------------------------------------------------

def mp(value) -> mpmath.mpf:
    return mpmath.mpf(Fraction(str(value)).numerator) / Fraction(str(value)).denominator


def activation(name: str, z: list, slope) -> list:
    if name == "softmax":
        top = max(z)
        e = [mpmath.exp(v - top) for v in z]
        return [v / sum(e) for v in e]
    f = {
        "linear": lambda v: v,
        "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)),
        "tanh": mpmath.tanh,
        "relu": lambda v: v if v > 0 else mpmath.mpf(0),
        "leaky_relu": lambda v: v if v > 0 else slope * v,
        "softplus": lambda v: mpmath.log(1 + mpmath.exp(v)),
        "elu": lambda v: v if v > 0 else mpmath.expm1(v),
    }[name]
    return [f(v) for v in z]


def forward(raw: dict, params: dict) -> tuple[mpmath.mpf, list, list]:
    """E, the outputs per sample, and every net input (to stay away from ReLU's kink)."""
    net = raw["network"]
    layers, acts, loss, bias = net["layers"], net["activation"], net["loss"], net["bias"]
    slope = mp(net.get("slope", "0.01"))
    nets, outputs, logits = [], [], []
    for x in raw["data"]["x"]:
        a = [mp(v) for v in x]
        for l in range(1, len(layers)):
            W = params[f"W{l}"]
            if net["convention"] in IN_BY_OUT:           # given in × out
                W = [list(c) for c in zip(*W)]
            b = params.get(f"b{l}")
            z = [sum(W[j][k] * a[k] for k in range(len(a))) + (0 if b is None else b if bias == "shared" else b[j])
                 for j in range(layers[l])]
            nets += z
            a = activation(acts[l - 1], z, slope)
        outputs.append(a)
        logits.append(z)
    Y = [[mp(v) for v in row] for row in raw["data"]["y"]]
    N, J = len(Y), len(Y[0])
    pairs = [(o, y) for on, yn in zip(outputs, Y) for o, y in zip(on, yn)]
    sq = sum((y - o) ** 2 for o, y in pairs)
    # the logarithms from the output's net inputs (log-sigmoid, log-softmax), so that an output
    # within e^−2500 of 0 or 1 still has its true logarithm at any working precision
    logs = [log_outputs(acts[-1], z) for z in logits]
    log_pairs = [(lo, l1, y) for ln, yn in zip(logs, Y) for (lo, l1), y in zip(ln, yn)]
    E = {
        "half_sse": lambda: sq / 2,
        "sse": lambda: sq,
        "mse": lambda: sq / (N * J),
        "quadratic": lambda: sq / (2 * N),
        "bce": lambda: -sum(y * lo + (1 - y) * l1 for lo, l1, y in log_pairs) / (N * J),
        "cross_entropy": lambda: -sum(y * lo for lo, _, y in log_pairs) / N,
    }[loss]()
    return E, outputs, nets


def log_outputs(name: str, z: list) -> list:
    """(ln o, ln(1 − o)) of each output unit of a sigmoid or softmax layer, from its net inputs."""
    if name == "softmax":
        top = max(z)
        total = top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in z))
        return [(v - total, None) for v in z]
    if name == "sigmoid":
        return [(-mpmath.log1p(mpmath.exp(-v)), -mpmath.log1p(mpmath.exp(v))) for v in z]
    return [(None, None) for _ in z]


def initial(raw: dict) -> dict:
    """The spec's parameters as mpf, in the spec's own layout."""
    def conv(v):
        return [conv(u) for u in v] if isinstance(v, list) else mp(v)
    return {k: conv(v) for k, v in raw["init"].items()}


def entries(params: dict):
    """(parameter name, index path) of every number, in the JSON layout."""
    for name, value in params.items():
        if not isinstance(value, list):
            yield name, ()
        elif not isinstance(value[0], list):
            yield from ((name, (i,)) for i in range(len(value)))
        else:
            yield from ((name, (i, j)) for i in range(len(value)) for j in range(len(value[0])))


def get(params: dict, name: str, index: tuple):
    value = params[name]
    for i in index:
        value = value[i]
    return value


def moved(params: dict, name: str, index: tuple, delta) -> dict:
    import copy

    out = copy.deepcopy(params)
    if not index:
        out[name] = out[name] + delta
    else:
        target = out[name]
        for i in index[:-1]:
            target = target[i]
        target[index[-1]] += delta
    return out


def away_from_kinks(raw: dict, nets: list) -> bool:
    if not {"relu", "leaky_relu", "elu"} & set(raw["network"]["activation"]):      # ELU: f″ jumps at 0
        return True
    return all(abs(z) > mpmath.mpf(10) ** -6 for z in nets)


# -- the properties ----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(networks())
def test_gradients_agree_with_finite_differences(raw):
    with mpmath.workdps(DIGITS):
        params = initial(raw)
        E, outputs, nets = forward(raw, params)
        assume(away_from_kinks(raw, nets))
        sol = solve(raw)
        out = sol.json()
        assert float(E) == pytest.approx(out["loss"], rel=1e-12, abs=1e-300)
        assert [float(o) for row in outputs for o in row] == pytest.approx(sum(out["outputs"], []), rel=1e-12,
                                                                           abs=1e-15)
        assert out["gradients"].keys() == params.keys()
        exact = {}
        for name, index in entries(params):
            fd = (forward(raw, moved(params, name, index, H))[0] - forward(raw, moved(params, name, index, -H))[0]) / (2 * H)
            got = get(out["gradients"], name, index)
            assert got == pytest.approx(float(fd), rel=1e-10, abs=1e-13), (name, index)
            exact[name, index] = fd
        # beyond double precision: the exact gradients, mapped by the engine's own layout ([j][k])
        step = sol.training.first
        net = sol.network
        for l, layer in enumerate(net.weights):
            for j, row in enumerate(layer):
                for k, w in enumerate(row):
                    index = (k, j) if raw["network"]["convention"] in IN_BY_OUT else (j, k)
                    assert abs(mpmath.mpf(str(step.gradient[w].evalf(DIGITS))) - exact[f"W{l + 1}", index]) \
                        <= mpmath.mpf(10) ** -25 * max(1, abs(exact[f"W{l + 1}", index]))


@settings(max_examples=100, deadline=None)
@given(networks())
def test_float_path_agrees_with_exact_path(raw):
    sol = solve(raw)
    with mpmath.workdps(DIGITS):
        _, _, nets = forward(raw, initial(raw))
        assume(away_from_kinks(raw, nets))
    d, step = sol.derivation, sol.training.first
    params = d.network.parameters
    gradient = compile_gradient(d)
    p = [float(step.parameters[q]) for q in params]
    loss, total = 0.0, [0.0] * len(params)
    for x, y in zip(sol.spec.x, sol.spec.y):
        e, g = gradient(p, [float(v) for v in x], [float(v) for v in y])
        loss += e
        total = [t + gi for t, gi in zip(total, g)]
    assert loss == pytest.approx(float(step.loss), rel=1e-12, abs=1e-300)
    assert total == pytest.approx([float(step.gradient[q]) for q in params], rel=1e-9, abs=1e-12)
    # every step of descend against exact steps redone here (step 1 and 2 exact in train already)
    history, exact = sol.training.history, []
    values = step.parameters
    for _ in range(sol.spec.steps + 1):
        s = evaluate(d, values)
        exact.append(float(s.loss))
        values = s.updated
    assert list(history) == pytest.approx(exact, rel=1e-9, abs=1e-12)
    final = [sol.training.final[q] for q in params]
    assert final == pytest.approx([float(s.parameters[q]) for q in params], rel=1e-9, abs=1e-12)


# -- saturated units: where doubles, or 60 digits, round 1 − a to 0 ------------------------------

def descent_here(raw: dict, digits: int) -> tuple[list, list]:
    """Gradient descent redone with central differences of ``forward`` at ``digits`` digits."""
    with mpmath.workdps(digits):
        h, rate = mpmath.mpf(10) ** -(digits // 3), mp(raw["train"]["learning_rate"])
        params, history, gradients = initial(raw), [], []
        for step in range(raw["train"]["steps"] + 1):
            history.append(forward(raw, params)[0])
            g = {key: (forward(raw, moved(params, *key, h))[0] - forward(raw, moved(params, *key, -h))[0]) / (2 * h)
                 for key in entries(params)}
            gradients.append(g)
            for key, value in g.items():
                params = moved(params, *key, -rate * value)
        return history, gradients


def saturated(activation: list, loss: str, W1, W2, y, steps: int, rate: str = "0.5") -> dict:
    return {"network": {"layers": [2, 2, len(y[0])], "activation": activation, "bias": "none", "loss": loss,
                        "convention": "column"},
            "data": {"x": [[1, 0], [0, 1]], "y": y}, "init": {"W1": W1, "W2": W2},
            "train": {"learning_rate": rate, "steps": steps}}


@pytest.mark.parametrize("raw", [
    # a sigmoid output at σ(60) for the target 1: 1.0 in doubles, so ln(1 − o) fails there
    saturated(["tanh", "sigmoid"], "bce", [[1, 0], [0, 1]], [[40, 40]], [[1], [0]], steps=4),
    # one huge step drives one output to 1 − 1e-70 and the other to 5e-63, which 60 digits
    # lose in ln(1 − o)
    saturated(["sigmoid"] * 2, "bce", [[0.5, -0.3], [0.2, 0.4]], [[0.3, -0.2]], [[1], [0]], steps=3, rate="5000"),
    # hidden units at σ(200): σ′ = a(1 − a) ≈ 1e-87, which 60 digits round to 0
    saturated(["sigmoid"] * 2, "half_sse", [[200, 0], [0, -200]], [[1, 1]], [[1], [0]], steps=2),
    # tanh(150): 1 − a² ≈ 1e-130
    saturated(["tanh", "linear"], "mse", [[150, 0], [0, 1]], [[1, 1]], [[1], [0]], steps=2),
    # a softmax input of 800: e^800 overflows a double
    saturated(["sigmoid", "softmax"], "cross_entropy", [[1, 0], [0, 1]], [[800, 0], [0, 1]], [[1, 0], [0, 1]],
              steps=3),
], ids=["bce-output", "bce-both-ends", "sigmoid-hidden", "tanh-hidden", "softmax-overflow"])
def test_saturated_units_keep_their_true_values(raw):
    """The loss of every step and the first gradients, against finite differences at 900 digits:
    true to the last double, not 0, not an error."""
    history, gradients = descent_here(raw, 900)
    out = solve(raw).json()
    assert out["history"] == pytest.approx([float(e) for e in history], rel=1e-9, abs=0)
    for (name, index), value in gradients[0].items():
        assert get(out["gradients"], name, index) == pytest.approx(float(value), rel=1e-12, abs=0), (name, index)


def one_layer_softmax(W1: list, x: list, y: list, steps: int, rate: str) -> dict:
    return {"network": {"layers": [len(x[0]), len(y[0])], "activation": ["softmax"], "bias": "none",
                        "loss": "cross_entropy", "convention": "column"},
            "data": {"x": x, "y": y}, "init": {"W1": W1}, "train": {"learning_rate": rate, "steps": steps}}


@pytest.mark.parametrize("raw", [
    # o₁ = e⁻³⁴ ≈ 1.7e-15: ln o₁ as ln(1 − o₂) in doubles lost every digit (34.03 printed for 33.996)
    one_layer_softmax([[-17], [17]], [[1]], [[1, 0]], steps=3, rate="0.001"),
    # o₁ = e⁻⁴⁰⁰: ln(1 − o₂) was −∞ at every precision tried, and the run "diverged" at a loss of 400
    one_layer_softmax([[-200], [200]], [[1]], [[1, 0]], steps=2, rate="0.001"),
    # a target class at probability 6.9e-13 among three
    one_layer_softmax([[-11, -6, 0], [6, 5, 0], [2, 1, 2]], [[1, 1, 1]], [[1, 0, 0]], steps=4, rate="0.01"),
    # o₁ = e⁻¹⁶⁰⁰ is below the smallest double: ∂E/∂o₁ = −1/o₁ exists only beyond doubles
    one_layer_softmax([[-800], [800]], [[1]], [[1, 0]], steps=2, rate="0.001"),
], ids=["e-34", "e-400", "three-classes", "below-doubles"])
def test_confidently_wrong_softmax_keeps_its_true_loss(raw):
    """Cross-entropy of a tiny target probability, every step, against finite differences at 900 digits."""
    history, gradients = descent_here(raw, 900)
    out = solve(raw).json()
    assert out["history"] == pytest.approx([float(e) for e in history], rel=1e-12, abs=0)
    for (name, index), value in gradients[0].items():
        assert get(out["gradients"], name, index) == pytest.approx(float(value), rel=1e-12, abs=0), (name, index)


def test_values_beyond_doubles_are_written_as_decimal_strings():
    """A softmax output of e⁻¹⁶⁰⁰ and ∂E/∂o = −e¹⁶⁰⁰ have no double; the JSON carries their decimal
    values as strings (17 significant digits), every other number as a number, and refuses nothing."""
    raw = one_layer_softmax([[-800], [800]], [[1]], [[1, 0]], steps=1, rate="0.001")
    sample = solve(raw).json()["samples"][0]
    with mpmath.workdps(50):
        o1 = 1 / (1 + mpmath.exp(1600))
        assert isinstance(sample["o1"], str) and abs(mpmath.mpf(sample["o1"]) / o1 - 1) < 1e-16
        assert isinstance(sample["dE/do1"], str) and abs(mpmath.mpf(sample["dE/do1"]) / (-1 / o1) - 1) < 1e-16
    assert sample["delta_o1"] == -1.0 and sample["E"] == 1600.0 and sample["o2"] == 1.0


def test_a_saturated_bce_output_keeps_its_json():
    """σ(800) for the target 0: the loss −ln(1 − o) = softplus(800) ≈ 800 is a double, ∂E/∂o = 1/(1 − o) = 1 + e⁸⁰⁰
    is not; JSON used to refuse the whole solution for it."""
    raw = {"network": {"layers": [1, 1], "activation": ["sigmoid"], "bias": "none", "loss": "bce",
                       "convention": "column"},
           "data": {"x": [[1]], "y": [[0]]}, "init": {"W1": [[800]]}, "train": {"learning_rate": "0.001", "steps": 2}}
    out = solve(raw).json()
    history, gradients = descent_here(raw, 900)
    assert out["history"] == pytest.approx([float(e) for e in history], rel=1e-12, abs=0)
    assert out["gradients"]["W1"][0][0] == pytest.approx(float(gradients[0]["W1", (0, 0)]), rel=1e-12, abs=0)
    with mpmath.workdps(50):
        assert abs(mpmath.mpf(out["samples"][0]["dE/do"]) / (1 + mpmath.exp(800)) - 1) < 1e-16


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(2, 3), st.integers(2, 4), st.integers(1, 3))
def test_a_bias_shared_by_a_softmax_layer_has_a_gradient_of_exactly_zero(seed, hidden, classes, samples):
    """Σⱼ oⱼ = 1 for every z: adding t to every net input of the softmax layer leaves E unchanged, shown
    here by the independent loss at 100 digits (E(b + t) = E(b)); derive's ∂E/∂b is then exactly 0, in the
    exact step, the JSON, the parameter after every step and the checker (it was ±4e−62 noise)."""
    rng = random.Random(seed)
    raw = {"network": {"layers": [2, hidden, classes], "activation": ["tanh", "softmax"], "bias": "shared",
                       "loss": "cross_entropy", "convention": "column"},
           "data": {"x": [[rng.choice(["0.3", "-0.7", "1.2", "0.05"]) for _ in range(2)] for _ in range(samples)],
                    "y": [[int(j == rng.randrange(classes)) for j in range(classes)] for _ in range(samples)]},
           "init": {"W1": [[rng.choice(["0.4", "-0.3", "0.9"]) for _ in range(2)] for _ in range(hidden)],
                    "b1": "0.1", "W2": [[rng.choice(["0.2", "-0.6", "1.1"]) for _ in range(hidden)]
                                        for _ in range(classes)], "b2": "0.25"},
           "train": {"learning_rate": "0.5", "steps": 3}}
    with mpmath.workdps(100):
        shifted = {**initial(raw), "b2": mp("0.25") + mp("0.3")}
        assert abs(forward(raw, shifted)[0] - forward(raw, initial(raw))[0]) < mpmath.mpf(10) ** -95
    sol = solve(raw)
    b2 = next(p for p in sol.network.parameters if sol.derivation.names[p].plain == "b2")
    assert sol.training.first.gradient[b2] is sp.S.Zero
    out = sol.json()
    assert out["gradients"]["b2"] == 0.0 and out["final"]["b2"] == 0.25
    assert check_claims(sol, ["dE/db2 = 0"])[0].holds


# -- networks drawn to saturate: every activation and loss, net inputs up to ±10⁴ --------------------

BIG = ["0.1", "0.5", "2", "30", "700", "2500"]            # |z| ≤ 3 · 2500 in the first layer
SMALL = ["0.001", "0.01", "0.1", "0.5"]                  # after an unbounded layer: |z| stays near 10⁴ or below
BOUNDED = {"sigmoid", "tanh", "softmax"}


def signed(draw, choices: list[str]) -> str:
    value = draw(st.sampled_from(choices))
    return value if draw(st.booleans()) else "-" + value


@st.composite
def saturating(draw) -> dict:
    layers, acts, loss, bias = architecture(draw, 2)
    samples = draw(st.integers(1, 2))
    targets = ["0", "1"] if loss in ("bce", "cross_entropy") else ["0", "1", "-1", "0.5"]
    x = [[draw(st.sampled_from(["0", "1", "-1", "0.5"])) for _ in range(layers[0])] for _ in range(samples)]
    y = [[draw(st.sampled_from(targets)) for _ in range(layers[-1])] for _ in range(samples)]
    init: dict = {}
    for l in range(1, len(layers)):
        choices = BIG if l == 1 or acts[l - 2] in BOUNDED else SMALL
        init[f"W{l}"] = [[signed(draw, choices) for _ in range(layers[l - 1])] for _ in range(layers[l])]
        if bias == "neuron":
            init[f"b{l}"] = [signed(draw, choices) for _ in range(layers[l])]
        elif bias == "shared":
            init[f"b{l}"] = signed(draw, choices)
    network = {"layers": layers, "activation": acts, "bias": bias, "loss": loss, "convention": "column"}
    return {"network": network, "data": {"x": x, "y": y}, "init": init,
            "train": {"learning_rate": draw(st.sampled_from(["0.0001", "0.01"])), "steps": draw(st.integers(1, 2))}}


def as_mpf(value) -> mpmath.mpf:
    """A JSON number, or a JSON string for a value beyond doubles, as mpf."""
    return mpmath.mpf(value)


def close(ours, true, rel=mpmath.mpf(10) ** -9, tiny=mpmath.mpf(10) ** -300) -> bool:
    return abs(as_mpf(ours) - true) <= rel * abs(true) + tiny


def printed(true) -> set[str]:
    """How derive may print a value: rounded to 6 digits (0.0821670), or in full where it is a short
    decimal (71.49843, 0.5)."""
    forms = {number(true).tex}
    for digits in range(1, 9):
        short = round_significant(true, digits)
        if abs(short - true) <= abs(true) * mpmath.mpf(10) ** -30:
            forms.add(number(short).tex)
    return forms


# derandomized: the same 20 networks on every run, so that main stays green by what it tests; a longer
# random search (hundreds of networks) is what found the explicit examples below
@settings(max_examples=20, deadline=None, derandomize=True)
@given(saturating())
# found by this test: after one step the output's z is 28,879, beyond the 3,840 digits' reach, and
# (1 − y) ln(1 − o) with y = 1 was 0 · ∞ = NaN in the exact step (now −softplus(z), and the loss 3.7e−12541)
@example({"network": {"layers": [3, 1, 2], "activation": ["linear", "sigmoid"], "bias": "shared", "loss": "bce",
                      "convention": "column"},
          "data": {"x": [["0", "0", "0"]], "y": [["1", "0"]]},
          "init": {"W1": [["-0.1", "-0.1", "-0.1"]], "b1": "-2500", "W2": [["0.001"], ["-0.001"]], "b2": "-0.001"},
          "train": {"learning_rate": "0.01", "steps": 1}})
# found in CI: at z = 0 exactly (an integer, not a float) softplus and log-softmax were left unevaluated
@example({"network": {"layers": [1, 2], "activation": ["softmax"], "bias": "none", "loss": "cross_entropy",
                      "convention": "column"},
          "data": {"x": [["0"]], "y": [["0", "0"]]}, "init": {"W1": [["-0.1"], ["-0.1"]]},
          "train": {"learning_rate": "0.0001", "steps": 1}})
@example({"network": {"layers": [1, 1], "activation": ["sigmoid"], "bias": "none", "loss": "cross_entropy",
                      "convention": "column"},
          "data": {"x": [["0"]], "y": [["1"]]}, "init": {"W1": [["-0.1"]]},
          "train": {"learning_rate": "0.0001", "steps": 1}})
def test_saturated_networks_agree_with_a_reference_at_thousands_of_digits(raw):
    """Against the loss written here (mpmath, with digits enough to resolve e^−|z| beside 1) and its
    central differences: the JSON's loss history and gradients, the numbers of the Markdown, and the
    checker's verdicts agree with it, or derive refuses and the reference shows the refusal is true."""
    with mpmath.workdps(30):
        _, _, nets = forward(raw, initial(raw))
        assume(away_from_kinks(raw, nets))
        top = max(abs(z) for z in nets)
    # e^−|z| beside 1 needs |z|/2.3 digits, and the differences of step h = 10^−(digits/3) half as many again;
    # they resolve a gradient to about 10^−(2·digits/3) of the loss, so smaller ones are 0 for this test
    digits = int(1.5 * float(top) / 2.3) + 200
    history, gradients = descent_here(raw, digits)
    tiny = mpmath.mpf(10) ** -(digits // 2)
    try:
        sol = solve(raw)
        out = sol.json()
    except SpecError as refusal:            # only where a loss truly leaves the doubles
        assert any(abs(e) > mpmath.mpf("1.7e308") for e in history), refusal
        return
    assert all(close(ours, true) for ours, true in zip(out["history"], history)), (out["history"], history)
    for (name, index), true in gradients[0].items():
        assert close(get(out["gradients"], name, index), true, tiny=tiny), (name, index, true)
    shown = [printed(true) for true in [history[0], *gradients[0].values()] if abs(true) > mpmath.mpf(10) ** -200]
    text = render_solution(sol, "md")
    assert all(forms & set(re.findall(r"-?[0-9.]+(?: \\times 10\^\{-?[0-9]+\})?", text)) for forms in shown), shown
    claims = [f"dE/d{name} = {number(sp.Float(value['gradient']), 10).plain}" for name, value in out["names"].items()
              if isinstance(value["gradient"], float)]
    assert all(v.holds for v in check_claims(sol, claims)), [v for v in check_claims(sol, claims) if not v.holds]


def test_a_loss_below_the_doubles_is_written_as_its_decimal_string():
    """The example above: the loss after the step is −softplus(−28879)/2 + … ≈ 3.66e−12541, which the
    JSON's history and new_loss carry as a string (0.0 would be a wrong number)."""
    raw = {"network": {"layers": [3, 1, 2], "activation": ["linear", "sigmoid"], "bias": "shared", "loss": "bce"},
           "data": {"x": [[0, 0, 0]], "y": [[1, 0]]},
           "init": {"W1": [["-0.1", "-0.1", "-0.1"]], "b1": "-2500", "W2": [["0.001"], ["-0.001"]], "b2": "-0.001"},
           "train": {"learning_rate": "0.01", "steps": 1}}
    out = solve(raw).json()
    with mpmath.workdps(60):
        params = {"b1": mp(-2500), "W2": [[mp("0.001")], [mp("-0.001")]], "b2": mp("-0.001")}
        # the step by hand: h = −2500, o = σ(w·h + b); ∂E/∂z_j = (o_j − y_j)/2, and E = ½ Σ softplus(±z)
        h = params["b1"]
        z = [params["W2"][j][0] * h + params["b2"] for j in range(2)]
        o = [1 / (1 + mpmath.exp(-v)) for v in z]
        dz = [(o[0] - 1) / 2, o[1] / 2]
        rate = mp("0.01")
        w = [params["W2"][j][0] - rate * dz[j] * h for j in range(2)]
        b2 = params["b2"] - rate * (dz[0] + dz[1])
        b1 = h - rate * (dz[0] * params["W2"][0][0] + dz[1] * params["W2"][1][0])
        z = [w[j] * b1 + b2 for j in range(2)]
        loss = (mpmath.log1p(mpmath.exp(-z[0])) + mpmath.log1p(mpmath.exp(z[1]))) / 2
    assert mpmath.mpf("1e-12542") < loss < mpmath.mpf("1e-12540")
    for value in (out["history"][1], out["new_loss"]):
        assert isinstance(value, str) and abs(mpmath.mpf(value) / loss - 1) < 1e-15


@pytest.mark.parametrize("weight, target", [("720", 1), ("800", 1), ("-1000", 0)], ids=["subnormal", "e-348", "e-435"])
def test_a_loss_that_underflows_on_the_tape_keeps_its_digits(weight, target):
    """From step 2 on the steps run in doubles: a loss of e^−800 was 0.0 there, and one of e^−720 (a subnormal)
    kept 11 of its 17 digits. Each loss of the history is now its true value, a string below the doubles,
    against the descent redone at 900 digits; the documents show it too (the plot draws it as 0)."""
    raw = {"network": {"layers": [1, 1], "activation": ["sigmoid"], "bias": "shared", "loss": "bce",
                       "convention": "column"},
           "data": {"x": [[1], [2]], "y": [[target], [target]]}, "init": {"W1": [[weight]], "b1": "1"},
           "train": {"learning_rate": "0.5", "steps": 4}}
    history, _ = descent_here(raw, 900)
    sol = solve(raw)
    out = sol.json()["history"]
    assert all(isinstance(value, str) for value in out), out
    assert all(abs(mpmath.mpf(ours) / true - 1) < 1e-15 for ours, true in zip(out, history)), (out, history)
    text = render_solution(sol, "md")
    assert text.count(f"| 4 | ${number(history[-1]).tex}$ |") == 1, text     # the history's last row


def test_a_saturated_output_with_target_one_has_true_local_factors():
    """Found by fuzzing: an output at z = 400000.2 with y = 1 made ∂e/∂o's (1 − y)/(1 − o) the NaN 0/0 in
    the JSON's factor_values and the documents (a TypeError). Each factor is now its true value, the
    tiny ones as strings: σ′(400000.2) = e^−400000.2/(1 + e^−400000.2)², computed here in mpmath."""
    raw = {"network": {"layers": [2, 1, 1], "activation": "sigmoid", "bias": "none", "loss": "bce"},
           "data": {"x": [[1, 1]], "y": [[1]]}, "init": {"W1": [[0.5, 0.5]], "W2": [[400000]]},
           "train": {"learning_rate": "0.5", "steps": 1}}
    sol = solve(raw)
    factors = sol.json()["factor_values"][0]
    with mpmath.workdps(40):
        z = 400000 * (1 / (1 + mpmath.exp(-1)))
        slope = mpmath.exp(-z) / (1 + mpmath.exp(-z)) ** 2
        assert abs(mpmath.mpf(factors["do/dz_o"]) / slope - 1) < 1e-15
    assert factors["dE/do"] == -1.0
    assert "do/dz_o" in sol.json()["factors"] and render_solution(sol, "md")
