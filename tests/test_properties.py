"""Property tests: on random small networks the gradients agree with central finite differences of
a loss computed here, independently of the engine (mpmath, 50 digits, straight from the spec's
numbers), and the compiled float path agrees with the exact one."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from derive import solve
from derive.numeric.tape import compile_gradient
from derive.numeric.values import evaluate

ELEMENTWISE = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "softplus"]
DIGITS = 50
H = mpmath.mpf(10) ** -20          # central differences: error ~H² ≈ 1e-40, rounding ~1e-50/H = 1e-30


# -- random specs --------------------------------------------------------------------------------

def decimal(draw, low: int = -100, high: int = 100, places: int = 2) -> str:
    """A random decimal written as text (exact in the spec), like "-0.37"."""
    n = draw(st.integers(low, high))
    return str(Fraction(n, 10 ** places)) if draw(st.booleans()) else f"{n / 10 ** places:.{places}f}"


@st.composite
def networks(draw) -> dict:
    depth = draw(st.integers(1, 3))
    layers = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    loss = draw(st.sampled_from(["half_sse", "sse", "mse", "quadratic", "bce", "cross_entropy"]))
    acts = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(depth)]
    if loss == "bce":
        acts[-1] = "sigmoid"
    elif loss == "cross_entropy":
        acts[-1] = draw(st.sampled_from(["softmax", "sigmoid"]))
    bias = draw(st.sampled_from(["none", "neuron", "shared"]))
    convention = draw(st.sampled_from(["column", "row"]))
    samples = draw(st.integers(1, 3))
    unit = loss in ("bce", "cross_entropy")         # targets in [0, 1]
    x = [[decimal(draw, -200, 200) for _ in range(layers[0])] for _ in range(samples)]
    y = [[decimal(draw, 0 if unit else -100, 100) for _ in range(layers[-1])] for _ in range(samples)]
    init: dict = {}
    for l in range(1, depth + 1):
        rows, cols = layers[l], layers[l - 1]
        W = [[decimal(draw) for _ in range(cols)] for _ in range(rows)]
        init[f"W{l}"] = [list(c) for c in zip(*W)] if convention == "row" else W
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
    }[name]
    return [f(v) for v in z]


def forward(raw: dict, params: dict) -> tuple[mpmath.mpf, list, list]:
    """E, the outputs per sample, and every net input (to stay away from ReLU's kink)."""
    net = raw["network"]
    layers, acts, loss, bias = net["layers"], net["activation"], net["loss"], net["bias"]
    slope = mp(net.get("slope", "0.01"))
    nets, outputs = [], []
    for x in raw["data"]["x"]:
        a = [mp(v) for v in x]
        for l in range(1, len(layers)):
            W = params[f"W{l}"]
            if net["convention"] == "row":               # given in × out
                W = [list(c) for c in zip(*W)]
            b = params.get(f"b{l}")
            z = [sum(W[j][k] * a[k] for k in range(len(a))) + (0 if b is None else b if bias == "shared" else b[j])
                 for j in range(layers[l])]
            nets += z
            a = activation(acts[l - 1], z, slope)
        outputs.append(a)
    Y = [[mp(v) for v in row] for row in raw["data"]["y"]]
    N, J = len(Y), len(Y[0])
    pairs = [(o, y) for on, yn in zip(outputs, Y) for o, y in zip(on, yn)]
    sq = sum((y - o) ** 2 for o, y in pairs)
    E = {
        "half_sse": lambda: sq / 2,
        "sse": lambda: sq,
        "mse": lambda: sq / (N * J),
        "quadratic": lambda: sq / (2 * N),
        "bce": lambda: -sum(y * mpmath.log(o) + (1 - y) * mpmath.log(1 - o) for o, y in pairs) / (N * J),
        "cross_entropy": lambda: -sum(y * mpmath.log(o) for o, y in pairs) / N,
    }[loss]()
    return E, outputs, nets


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
    if not {"relu", "leaky_relu"} & set(raw["network"]["activation"]):
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
                    index = (k, j) if raw["network"]["convention"] == "row" else (j, k)
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
