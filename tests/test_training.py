"""[train]'s update rules (online, mini-batches, shuffle, weight decay, momentum, rates per layer) against
PyTorch float64 and against updates worked by hand.

The PyTorch side is written here from the textbook definitions: the network with torch.nn.functional,
the loss of each mini-batch from the DESIGN.md table with B in place of N, and torch.optim.SGD with
one parameter group per layer (its own learning rate; weight decay on the weights, and on the biases
where asked; momentum with PyTorch's buffer b ← μ b + g, p ← p − η b, which is derive's
v ← μ v − η g, p ← p + v with v = −η b). derive's JSON gives the order of the samples; the order
itself is checked on its own below.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import random

import pytest
import sympy as sp
import torch        # a test dependency ([test] extras): never skipped
from hypothesis import given
from hypothesis import strategies as st

from derive import load, solve
from derive.cli import main
from derive.errors import RenderError
from derive.exam.generate import generate
from derive.numeric.rounding import number
from derive.text.document import View, build

F = torch.nn.functional
ACT = {"linear": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
       "softplus": F.softplus, "elu": F.elu, "softmax": lambda z: torch.softmax(z, dim=-1)}


def batch_loss(name: str, reduction: str, o, y):
    """The DESIGN.md loss of a batch of B samples (rows), B in place of N; summed without 1/N, 1/J."""
    B, J = o.shape
    sq = ((y - o) ** 2).sum()
    if name in ("bce", "cross_entropy"):
        terms = y * torch.log(o) + ((1 - y) * torch.log(1 - o) if name == "bce" else 0)
        total = -terms.sum()
        return total if reduction == "sum" else total / (B * J if name == "bce" else B)
    scale = {"half_sse": 0.5, "sse": 1.0, "mse": 1 / (B * J), "quadratic": 1 / (2 * B)}[name]
    if reduction == "sum":
        scale = 1.0
    return scale * sq


class Torch:
    """The spec's network in float64 torch tensors, initialised from derive's own `parameters`."""

    def __init__(self, raw: dict, report: dict):
        net, train = raw["network"], raw.get("train", {})
        depth = len(net["layers"]) - 1
        acts = net["activation"] if isinstance(net["activation"], list) else [net["activation"]] * depth
        self.acts, self.loss, self.reduction = acts, net.get("loss", "half_sse"), net.get("reduction", "mean")
        bias = net.get("bias", "none")
        kinds = bias if isinstance(bias, list) else [bias] * depth
        params = report["parameters"]
        self.W = [torch.tensor(params[f"W{l}"], dtype=torch.float64, requires_grad=True) for l in range(1, depth + 1)]
        self.biased = [l for l in range(depth) if kinds[l] != "none"]        # the layers with a bias
        self.b = [torch.tensor(params[f"b{l + 1}"], dtype=torch.float64, requires_grad=True) for l in self.biased]
        self.X = torch.tensor(raw["data"]["x"], dtype=torch.float64)
        self.Y = torch.tensor(raw["data"]["y"], dtype=torch.float64)
        self.decay = float(train.get("weight_decay", 0))
        self.decay_biases = train.get("decay_biases", False)
        rate = train.get("learning_rate", 0.1)
        rates = rate if isinstance(rate, dict) else {f"W{l}": rate for l in range(1, depth + 1)}
        groups = []
        for l in range(depth):
            w_rate = float(rates[f"W{l + 1}"])
            groups.append({"params": [self.W[l]], "lr": w_rate, "weight_decay": self.decay})
            if l in self.biased:
                groups.append({"params": [self.b[self.biased.index(l)]], "lr": float(rates.get(f"b{l + 1}", w_rate)),
                               "weight_decay": self.decay if self.decay_biases else 0.0})
        self.sgd = torch.optim.SGD(groups, lr=0.1, momentum=float(train.get("momentum", 0)))

    def forward(self, X):
        a = X
        for l, W in enumerate(self.W):
            z = a @ W.T
            if l in self.biased:        # a shared bias is a 0-d tensor: broadcast to every unit
                z = z + self.b[self.biased.index(l)]
            a = ACT[self.acts[l]](z)
        return a

    def objective(self) -> float:
        """The loss over every sample with the decay's λ/2 Σ w²: what derive's history records."""
        with torch.no_grad():
            penalty = sum((W ** 2).sum() for W in self.W) + (sum((b ** 2).sum() for b in self.b)
                                                             if self.decay_biases else 0)
            return float(batch_loss(self.loss, self.reduction, self.forward(self.X), self.Y)
                         + self.decay / 2 * penalty)

    def update(self, samples: list[int]) -> None:
        self.sgd.zero_grad()
        batch_loss(self.loss, self.reduction, self.forward(self.X[samples]), self.Y[samples]).backward()
        self.sgd.step()

    def state(self) -> dict:
        out = {f"W{l + 1}": W.detach().tolist() for l, W in enumerate(self.W)}
        out.update({f"b{l + 1}": b.detach().tolist() for l, b in zip(self.biased, self.b)})
        return out


def close(a, b, rel=1e-11, abs_=1e-14) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(close(x, y, rel, abs_) for x, y in zip(a, b))
    return abs(a - b) <= abs_ + rel * abs(b)


def against_torch(raw: dict) -> None:
    """derive's history, first update and final parameters equal PyTorch's, update by update."""
    report = solve(raw).json()
    model = Torch(raw, report)
    steps = raw.get("train", {}).get("steps", 1)
    batches = report.get("batches", [list(range(len(raw["data"]["x"])))] * steps)
    history = [model.objective()]
    for k, samples in enumerate(batches):
        model.update(samples)
        history.append(model.objective())
        if k == 0:
            assert all(close(report["updated"][g], v) for g, v in model.state().items()), (report["updated"],
                                                                                          model.state())
    assert close(report["history"], history), (report["history"], history)
    assert all(close(report["final"][g], v) for g, v in model.state().items()), (report["final"], model.state())


def spec(layers, activation, loss, train, bias="neuron", reduction="mean", n=4, seed=0) -> dict:
    rng = random.Random(seed)
    x = [[round(rng.uniform(-1, 1), 2) for _ in range(layers[0])] for _ in range(n)]
    if loss in ("cross_entropy",) and activation[-1] == "softmax":
        y = [[1 if j == (i % layers[-1]) else 0 for j in range(layers[-1])] for i in range(n)]
    elif loss in ("bce", "cross_entropy"):
        y = [[rng.choice([0, 1]) for _ in range(layers[-1])] for _ in range(n)]
    else:
        y = [[round(rng.uniform(-1, 1), 2) for _ in range(layers[-1])] for _ in range(n)]
    return {"network": {"layers": layers, "activation": activation, "loss": loss, "bias": bias,
                        "reduction": reduction},
            "data": {"x": x, "y": y}, "init": {"seed": seed}, "train": train}


CASES = {
    "online, half_sse": spec([2, 2, 1], ["sigmoid", "sigmoid"], "half_sse", {"batch": "online", "steps": 9}),
    "online, mse over 3 samples": spec([2, 3, 2], ["tanh", "linear"], "mse",
                                       {"batch": "online", "steps": 7, "learning_rate": 0.3}, n=3),
    "mini-batches of 2 of 5, mse": spec([3, 2, 1], ["relu", "sigmoid"], "mse", {"batch": 2, "steps": 8}, n=5),
    "mini-batches, shuffled, bce": spec([2, 2, 1], ["tanh", "sigmoid"], "bce",
                                        {"batch": 2, "shuffle": True, "steps": 10, "learning_rate": 0.7}, n=5),
    "online, softmax + cross-entropy": spec([2, 3, 3], ["sigmoid", "softmax"], "cross_entropy",
                                            {"batch": "online", "steps": 6, "learning_rate": 0.5}, n=3),
    "weight decay, full batch": spec([2, 2, 1], ["sigmoid", "sigmoid"], "mse",
                                     {"weight_decay": 0.05, "steps": 5, "learning_rate": 0.5}),
    "weight decay on the biases too": spec([2, 2, 2], ["softplus", "linear"], "quadratic",
                                           {"weight_decay": 0.1, "decay_biases": True, "steps": 4}),
    "momentum, full batch": spec([2, 2, 1], ["sigmoid", "sigmoid"], "half_sse",
                                 {"momentum": 0.9, "steps": 12, "learning_rate": 0.5}),
    "momentum, decay and mini-batches": spec([2, 3, 1], ["tanh", "sigmoid"], "bce",
                                             {"momentum": 0.5, "weight_decay": 0.01, "batch": 3, "shuffle": True,
                                              "steps": 9}, n=7),
    "rates per layer": spec([2, 2, 1], ["sigmoid", "linear"], "sse",
                            {"learning_rate": {"W1": 0.3, "W2": 0.05, "b2": 0.01}, "steps": 6}),
    "rates per layer, shared bias, online": spec([2, 2, 1], ["sigmoid", "sigmoid"], "mse",
                                                 {"learning_rate": {"W1": 0.3, "W2": 0.6}, "batch": "online",
                                                  "steps": 5, "momentum": 0.3}, bias="shared"),
    "softmax + mse": spec([2, 2, 3], ["tanh", "softmax"], "mse", {"steps": 5, "learning_rate": 0.8}),
    "softmax + half_sse, online": spec([2, 3, 2], ["sigmoid", "softmax"], "half_sse",
                                       {"batch": "online", "steps": 5}, n=3),
    "a bias type per layer": spec([2, 3, 2, 2], ["tanh", "sigmoid", "softmax"], "cross_entropy",
                                  {"steps": 6, "batch": 2, "weight_decay": 0.01, "decay_biases": True},
                                  bias=["shared", "none", "neuron"], n=4),
    "summed mse, mini-batches": spec([2, 2, 1], ["sigmoid", "linear"], "mse", {"batch": 2, "steps": 5},
                                     reduction="sum"),
    "summed cross-entropy, online": spec([2, 2], ["softmax"], "cross_entropy",
                                         {"batch": "online", "steps": 4}, reduction="sum", bias="none"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_updates_equal_pytorch_sgd(name):
    against_torch(CASES[name])


@given(st.sampled_from(["half_sse", "mse", "bce"]), st.sampled_from(["full", "online", 2, 3]),
       st.sampled_from([0, 0.5, 0.9]), st.sampled_from([0, 0.01]), st.booleans(), st.integers(0, 10 ** 6))
def test_generated_networks_equal_pytorch(loss, batch, momentum, decay, shuffle, seed):
    acts = ["tanh", "sigmoid"] if loss == "bce" else ["sigmoid", "linear"]
    against_torch(spec([2, 2, 1], acts, loss, {"batch": batch, "momentum": momentum, "weight_decay": decay,
                                                "shuffle": shuffle, "steps": 6, "learning_rate": 0.4},
                       n=4, seed=seed))


# -- by hand ---------------------------------------------------------------------------------

def tiny(**train) -> dict:
    """o = w x, E = Σ ½(y − o)², w = 0.5, samples (x, y) = (1, 1) and (2, 1), η = 0.1."""
    return {"network": {"layers": [1, 1], "activation": "linear", "loss": "half_sse"},
            "data": {"x": [[1], [2]], "y": [[1], [1]]}, "init": {"W1": [[0.5]]},
            "train": {"learning_rate": 0.1, "steps": 2, **train}}


def test_online_updates_worked_by_hand():
    # sample 1: o = 0.5, ∂e/∂w = (o − y) x = −0.5, w = 0.5 + 0.05 = 0.55
    # sample 2: o = 1.1, ∂e/∂w = 0.1 · 2 = 0.2, w = 0.55 − 0.02 = 0.53
    # E(0.5) = ½·0.25 + 0 = 0.125; E(0.55) = ½·0.45² + ½·0.1² = 0.10625; E(0.53) = ½·0.47² + ½·0.06² = 0.11225
    report = solve(tiny(batch="online")).json()
    assert report["batches"] == [[0], [1]]
    assert report["first_update"]["gradients"]["W1"] == [[-0.5]]
    assert report["updated"]["W1"] == [[0.55]]
    assert report["final"]["W1"][0] == pytest.approx([0.53], abs=1e-15)
    assert report["history"] == pytest.approx([0.125, 0.10625, 0.11225], abs=1e-15)
    # the whole batch's gradient at the initial w: −0.5 + 0 (sample 2 fits exactly)
    assert report["gradients"]["W1"] == [[-0.5]]


def test_mini_batches_worked_by_hand():
    # o = w x, mse, w = 0.5, (x, y) = (1, 1), (2, 1), (3, 1), η = 0.1, batches of 2: [1, 2], then [3]
    # batch 1, B = 2: ∂/∂w (1/2) Σ (y − o)² = Σ (o − y) x = (−0.5)(1) + (0)(2) = −0.5, w = 0.55
    # batch 2, B = 1: 2 (o − y) x = 2 (1.65 − 1)(3) = 3.9, w = 0.55 − 0.39 = 0.16
    # the whole data's gradient at w = 0.5: (2/3)((−0.5)(1) + 0 + (0.5)(3)) = 2/3
    raw = {"network": {"layers": [1, 1], "activation": "linear", "loss": "mse"},
           "data": {"x": [[1], [2], [3]], "y": [[1], [1], [1]]}, "init": {"W1": [[0.5]]},
           "train": {"learning_rate": 0.1, "steps": 2, "batch": 2}}
    report = solve(raw).json()
    assert report["batches"] == [[0, 1], [2]]
    assert report["first_update"]["gradients"]["W1"] == [[-0.5]]
    assert report["updated"]["W1"] == [[0.55]]
    assert report["final"]["W1"][0] == pytest.approx([0.16], abs=1e-15)
    assert report["gradients"]["W1"][0] == pytest.approx([2 / 3], abs=1e-15)


def test_momentum_worked_by_hand():
    # v = −0.1 · (−0.5) = 0.05, w = 0.55; then g = 0.2 (sample 2), v = 0.9 · 0.05 − 0.02 = 0.025, w = 0.575
    report = solve(tiny(batch="online", momentum=0.9)).json()
    assert report["final"]["W1"][0] == pytest.approx([0.575], abs=1e-15)


def test_weight_decay_worked_by_hand():
    # full batch, λ = 0.1: E = 0.125 + 0.05 · 0.25 = 0.1375; g = −0.5 + 0 + 0.1 · 0.5 = −0.45; w = 0.545
    report = solve(tiny(weight_decay=0.1, steps=1)).json()
    assert report["loss"] == 0.1375
    assert report["gradients"]["W1"] == [[-0.45]]
    assert report["updated"]["W1"] == [[0.545]]


def test_rates_per_layer_worked_by_hand():
    # o = w2·(w1 x) linear, one sample x = 1, y = 1, w1 = w2 = 0.5: o = 0.25, ∂E/∂w1 = (o − y) w2 x = −0.375,
    # ∂E/∂w2 = (o − y) h = −0.375; with η_W1 = 0.1, η_W2 = 0.2: w1 = 0.5375, w2 = 0.575
    raw = {"network": {"layers": [1, 1, 1], "activation": "linear"}, "data": {"x": [[1]], "y": [[1]]},
           "init": {"W1": [[0.5]], "W2": [[0.5]]}, "train": {"learning_rate": {"W1": 0.1, "W2": 0.2}}}
    report = solve(raw).json()
    assert report["updated"] == {"W1": [[0.5375]], "W2": [[0.575]]}


# -- the order of the samples ------------------------------------------------------------------

@pytest.mark.parametrize("n, size", [(5, 2), (6, 3), (4, 1), (7, 7)])
def test_each_pass_covers_every_sample_once_in_batches_of_the_size(n, size):
    raw = spec([1, 1], ["linear"], "mse", {"batch": size, "shuffle": True, "steps": 4 * -(-n // size)}, n=n)
    batches = solve(raw).json().get("batches", [list(range(n))] * 4)
    per_pass = -(-n // size)
    passes = [batches[i:i + per_pass] for i in range(0, len(batches), per_pass)]
    for batch_list in passes:
        assert sorted(s for b in batch_list for s in b) == list(range(n))
        assert [len(b) for b in batch_list] == [size] * (n // size) + ([n % size] if n % size else [])
    if size < n:
        assert len({tuple(map(tuple, p)) for p in passes}) > 1     # shuffled: not every pass in one order
    again = solve(raw).json().get("batches", [list(range(n))] * 4)
    assert again == batches


def test_the_seed_draws_the_order_and_without_shuffle_it_is_the_data_order():
    def order(seed, shuffle):
        raw = spec([1, 1], ["linear"], "mse", {"batch": 2, "shuffle": shuffle, "steps": 6}, n=6)
        raw["init"]["seed"] = seed
        return solve(raw).json()["batches"]

    assert order(0, False) == [[0, 1], [2, 3], [4, 5]] * 2
    assert order(0, True) != order(1, True)


# -- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("train, field, expected", [
    ({"batch": 0}, "[train].batch", "mini-batch size from 1 to 4"),
    ({"batch": "half"}, "[train].batch", '"online"'),
    ({"batch": 9}, "[train].batch", "from 1 to 4"),
    ({"momentum": 1}, "[train].momentum", "up to (not including) 1"),
    ({"weight_decay": -0.1}, "[train].weight_decay", "0 or a positive number"),
    ({"shuffle": "yes"}, "[train].shuffle", "true or false"),
    ({"learning_rate": {"W1": 0.1}}, "[train].learning_rate", "missing W2"),
    ({"learning_rate": {"W1": 0.1, "W2": 0.1, "W3": 1}}, "[train].learning_rate.W3", "unknown layer"),
    ({"learning_rate": {"W1": 0.1, "W2": -1}}, "[train].learning_rate.W2", "positive number"),
])
def test_bad_training_options_are_one_line_errors(tmp_path, capsys, train, field, expected):
    path = tmp_path / "bad.toml"
    path.write_text(toml({"network": {"layers": [2, 2, 1]}, "data": {"x": [[1, 2], [3, 4], [5, 6], [7, 8]],
                                                                     "y": [[1], [0], [1], [0]]}, "train": train}))
    assert main(["solve", str(path), "--format", "json"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and field in err and expected in err, err


# -- where the first update is not yet worked in the documents --------------------------------

def test_an_exam_rate_range_beside_rates_per_layer_is_a_one_line_error(tmp_path, capsys):
    raw = spec([1, 1, 1], ["linear", "linear"], "half_sse", {"learning_rate": {"W1": 0.1, "W2": 0.2}}, bias="none", n=2)
    raw["exam"] = {"learning_rate": [0.1, 0.2]}
    path = tmp_path / "mode.toml"
    path.write_text(toml(raw))
    out = tmp_path / "out"
    assert main(["exam", str(path), "--variants", "1", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "[exam].learning_rate" in err and "its own rate" in err, err
    assert not out.exists() or not any(out.iterdir())       # nothing half-written


def test_derive_check_judges_online_claims_on_the_first_update(tmp_path, capsys):
    # w = 0.5 on (x, y) = (1, 1), then (2, 2), η = 0.1: online, the first update follows sample 1 alone:
    # ∂e₁/∂w = (0.5 − 1)·1 = −0.5, w′ = 0.55; the whole batch's gradient would be −0.5 + (1 − 2)·2 = −2.5, w′ = 0.75
    raw = tiny(batch="online")
    raw["data"]["y"] = [[1], [2]]
    path = tmp_path / "online.toml"
    path.write_text(toml(raw))
    assert main(["check", str(path), "--claim", "w1' = 0.55", "--claim", "dE/dw1 = -0.5"]) == 0
    assert main(["check", str(path), "--claim", "w1' = 0.75"]) != 0


def test_derive_check_judges_updates_with_weight_decay(tmp_path, capsys):
    # w = 0.5, λ = 0.1, η = 0.1, samples (1, 1) and (2, 1): ∂E/∂w = −0.5 + 0 (the data's), w′ = 0.5 − 0.1·(−0.5 + 0.05) = 0.545
    path = tmp_path / "decay.toml"
    path.write_text(toml(tiny(weight_decay=0.1, steps=1)))
    claims = ["dE/dw1 = -0.5", "w1' = 0.545", "w1' = w1 - eta*(dE/dw1 + lambda*w1)"]
    assert main(["check", str(path), *(a for c in claims for a in ("--claim", c))]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--claim", "w1' = 0.55000"]) != 0        # the step without the decay
    assert "weight decay" in capsys.readouterr().out


def test_derive_check_judges_updates_with_a_rate_per_layer(tmp_path, capsys):
    # o = w2 (w1 x), x = y = 1, w1 = w2 = 0.5: both gradients −0.375; η_W1 = 0.1, η_W2 = 0.2: w1′ = 0.5375, w2′ = 0.575
    raw = {"network": {"layers": [1, 1, 1], "activation": "linear"}, "data": {"x": [[1]], "y": [[1]]},
           "init": {"W1": [[0.5]], "W2": [[0.5]]}, "train": {"learning_rate": {"W1": 0.1, "W2": 0.2}}}
    path = tmp_path / "rates.toml"
    path.write_text(toml(raw))
    assert main(["check", str(path), "--claim", "w1' = 0.5375", "--claim", "w2' = 0.575",
                 "--claim", "w2' = w2 - 0.2*dE/dw2"]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--claim", "w2' = 0.5375"]) != 0        # layer 1's rate on w2
    assert "learning rate 0.2, not 0.1" in capsys.readouterr().out
    assert main(["check", str(path), "--claim", "w2' = w2 - eta*dE/dw2"]) == 1
    assert "its own rate" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["md", "tex", "html"])
def test_every_mode_renders_in_every_format(tmp_path, fmt):
    raw = spec([2, 2, 1], ["sigmoid", "sigmoid"], "mse", {"batch": 2, "shuffle": True, "weight_decay": 0.01,
                                                          "momentum": 0.5, "steps": 4,
                                                          "learning_rate": {"W1": 0.2, "W2": 0.4}}, n=3)
    path = tmp_path / "modes.toml"
    path.write_text(toml(raw))
    assert main(["solve", str(path), "--format", fmt, "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / f"modes.{fmt}").read_text()
    assert "mini-batches of 2 samples" in text and "weight decay" in text


def test_momentum_documents_work_the_first_update_and_say_how_the_later_ones_differ():
    raw = tiny(momentum=0.9, batch="full")
    text = solve(raw)._repr_markdown_()
    assert r"v \leftarrow \mu v" in text and r"\mu = 0.9" in text
    # the first update is the plain step: 0.5 − 0.1 · (−0.5 + 0 · … ) with the whole batch's gradient −0.5
    assert solve(raw).json()["updated"]["W1"] == [[0.55]]


def test_plain_descent_adds_no_keys_to_the_json():
    report = solve(tiny()).json()
    assert not {"optimizer", "batches", "first_update"} & set(report)


def toml(raw: dict) -> str:
    """A spec dict as TOML (tables of numbers, strings, booleans, lists and inline tables)."""
    def value(v):
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v)
    return "".join(f"[{table}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in body.items())
                   for table, body in raw.items())


# -- the worked first step online and in mini-batches -------------------------------------------

@pytest.mark.parametrize("name", ["online, half_sse", "mini-batches, shuffled, bce", "online, mse over 3 samples",
                                  "weight decay, full batch", "weight decay on the biases too",
                                  "momentum, full batch", "rates per layer", "rates per layer, shared bias, online",
                                  "a bias type per layer"])
def test_the_worked_first_step_is_the_update_pytorch_takes(name):
    raw = CASES[name]
    solution = solve(raw)
    doc = build(solution, view=View(detail="full"))        # every parameter's update (short: one per layer group)
    model = Torch(raw, solution.json())
    every = list(range(len(raw["data"]["x"])))
    batches = solution.json().get("batches", [every] * raw["train"]["steps"])
    model.update(batches[0])
    after = [v for group in model.state().values() for v in flatten(group)]
    # the update section's last row of each parameter, in the engine's order: W1, W2, …, then b1, b2, … (as state())
    shown = [eq.rows[-1].tex for eq in doc.update.equations]
    assert shown == [number(v, inexact=True).tex for v in after], (shown, after)
    # the history is the whole data's, and the first step's loss the batch's own
    model = Torch(raw, solution.json())
    history = [model.objective()]
    for samples in batches:
        model.update(samples)
        history.append(model.objective())
    assert [n.tex for _, n in doc.history.rows] == [number(h, inexact=True).tex for h in history]
    if raw["train"].get("weight_decay") and "batch" not in raw["train"]:   # the loss section ends with E + λ/2 Σ w²
        assert doc.loss.equations[-1].rows[-1].tex == number(history[0], inexact=True).tex


def flatten(value):
    return [v for item in value for v in flatten(item)] if isinstance(value, list) else [value]


def test_the_documents_say_which_samples_the_first_step_takes():
    raw = CASES["mini-batches, shuffled, bce"]
    solution = solve(raw)
    first = solution.json()["batches"][0]
    doc = build(solution)
    rows = " and ".join(str(n + 1) for n in first)
    assert f"on samples {rows} of the data" in doc.setup.training
    assert len(doc.forward) == 1 and len(doc.setup.data) == len(raw["data"]["x"])      # short: one sample worked
    assert [t.samples for t in doc.forward_table] == [tuple(range(1, len(first) + 1))]  # the step's samples, tabulated
    assert len(build(solution, view=View(detail="full")).forward) == len(first)
    assert f"loss of samples {rows} of the data alone" in doc.loss.note


# -- derive exam, online and with weight decay ------------------------------------------------------

EXAMS = {
    "online, weight decay": {"batch": "online", "weight_decay": 0.01, "learning_rate": 0.5},
    "rates per layer, momentum": {"learning_rate": {"W1": 0.5, "W2": 0.25, "b2": 0.1}, "momentum": 0.9},
}


@pytest.mark.parametrize("name", sorted(EXAMS))
def test_an_exam_asks_about_pytorchs_first_update(tmp_path, name):
    raw = spec([2, 2, 1], ["sigmoid", "sigmoid"], "half_sse", EXAMS[name], n=3)
    path = tmp_path / "template.toml"
    path.write_text(toml(raw))
    exam = generate(load(str(path)), variants=4, seed=3)
    asked = set()
    for variant in exam.variants:
        solution = solve(variant.raw)
        model = Torch(variant.raw, solution.json())
        first = solution.json().get("batches", [[0, 1, 2]])[0]
        assert first == ([0] if "batch" in EXAMS[name] else [0, 1, 2])
        model.sgd.zero_grad()
        o = model.forward(model.X[first])
        loss = batch_loss(model.loss, model.reduction, o, model.Y[first])
        loss.backward()
        gradient = [float(g) for t in model.W + model.b for g in t.grad.flatten()]     # before the decay's λw
        model.sgd.step()
        updated = [float(v) for t in model.W + model.b for v in t.detach().flatten()]
        index = {solution.network.names[p].plain: i for i, p in enumerate(solution.network.parameters)}
        truth = {"o": float(o[0, 0].detach()), "o[1]": float(o[0, 0].detach()), "E": float(loss.detach())}
        truth.update({f"dE/d{name}": gradient[i] for name, i in index.items()})
        truth.update({f"{name}'": updated[i] for name, i in index.items()})
        for q in variant.questions:
            if q.kind in ("forward", "loss", "gradient", "update", "choice"):
                places = len(q.display.split(".")[1])
                assert abs(float(q.display) - truth[q.quantity]) <= 0.5 * 10 ** -places + 1e-12, (q.quantity, q.display)
                asked.add(q.kind)
    assert {"loss", "gradient", "update"} <= asked
    sheet = (tmp_path / "out")
    assert main(["exam", str(path), "--variants", "1", "--out", str(sheet)]) == 0
    text = (sheet / "sheet-01.md").read_text()
    if "batch" in EXAMS[name]:
        assert "takes sample 1 of the data alone" in text and r"\lambda = 0.01" in text
    else:
        assert r"\eta_{W^{(2)}} = 0.25" in text


def test_a_bias_type_per_layer_goes_everywhere(tmp_path, capsys):
    raw = spec([2, 2, 2], ["tanh", "sigmoid"], "mse", {"steps": 2}, bias=["neuron", "shared"], n=2)
    path = tmp_path / "mixed.toml"
    path.write_text(toml(raw))
    solution = solve(raw)
    names = [solution.network.names[b].plain for layer in solution.network.biases for b in dict.fromkeys(layer)]
    assert names == ["b1", "b2", "b3"]          # b3: the output layer's one shared bias, after layer 1's two
    truth = solution.json()["gradients"]["b2"]
    for fmt in ("md", "tex", "html"):
        assert main(["solve", str(path), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    md = (tmp_path / "md" / "mixed.md").read_text()
    assert "layer 1: one bias per unit; layer 2: one bias per layer" in md
    assert "layers with one bias shared by their units (here layer $2$)" in md
    assert main(["check", str(path), "--claim", f"dE/db3 = {truth:.6f}"]) == 0
    assert main(["exam", str(path), "--variants", "2", "--out", str(tmp_path / "exam")]) == 0
    assert "Layer 1 has a bias per unit. Layer 2 has one bias shared by its units." in (
        tmp_path / "exam" / "sheet-01.md").read_text()


def test_derive_check_reads_the_velocity_of_a_momentum_step(tmp_path, capsys):
    # w = 0.5 on (1, 1) and (2, 2), η = 0.1, μ = 0.9: ∂E/∂w = (0.5 − 1)·1 + (1 − 2)·2 = −2.5, v = 0.9·0 − 0.1·(−2.5) = 0.25
    raw = tiny(momentum=0.9)
    raw["data"]["y"] = [[1], [2]]
    path = tmp_path / "momentum.toml"
    path.write_text(toml(raw))
    assert main(["check", str(path), "--claim", "v_w1 = 0.25", "--claim", "v_w1 = -eta*dE/dw1",
                 "--claim", "w1' = w1 + v_w1"]) == 0
    capsys.readouterr()
    assert main(["check", str(path), "--claim", "v_w1 = 0.75"]) != 0
    assert "the change of w1, not its new value" in capsys.readouterr().out
    assert main(["check", str(path), "--claim", "v_w1 = -0.25"]) != 0
    plain = tmp_path / "plain.toml"
    plain.write_text(toml(tiny()))
    assert main(["check", str(plain), "--claim", "v_w1 = 0.25"]) == 1      # no momentum: no velocity to claim


STOCHASTIC = [name for name, raw in CASES.items() if raw["train"].get("batch", "full") != "full"]


@pytest.mark.parametrize("name", STOCHASTIC)
def test_each_later_update_is_worked_from_the_parameters_and_velocity_the_one_before_left(name):
    """Online and in mini-batches the document works updates 2, 3, … of the first pass like the first, each on
    its own batch from the parameters (and velocity) before it: each equals PyTorch's SGD after that many updates,
    exactly as derive computes the first, and the document prints each new value as PyTorch's rounded."""
    raw = CASES[name]
    sol = solve(raw)
    report = sol.json()
    model = Torch(raw, report)
    later = sol.later_updates
    per_pass = -(-len(raw["data"]["x"]) // sol.spec.optimizer.batch)
    assert len(later) == min(raw["train"]["steps"], per_pass, 5) - 1 > 0
    doc = build(sol)
    assert [u.number for u in doc.later] == list(range(2, len(later) + 2))
    for k, samples in enumerate(report["batches"][:len(later) + 1]):
        model.update(samples)
        if k == 0:
            continue
        updated = later[k - 1].json()["updated"]
        assert all(close(updated[g], v) for g, v in model.state().items()), (k, updated, model.state())
        shown = doc.later[k - 1]
        assert shown.title.startswith(f"Update {k + 1}: sample") and all(
            f" {n + 1}" in shown.title for n in samples), shown.title
        w1 = model.state()["W1"][0][0]
        first = shown.update.equations[0]
        assert first.rows[-1].tex == number(sp.Float(w1, 30)).tex, (first.rows[-1].tex, w1)


def test_full_batch_and_single_updates_have_no_next_updates():
    assert solve(CASES["momentum, full batch"]).later_updates == ()
    one = dict(CASES["online, half_sse"], train={"batch": "online", "steps": 1})
    assert solve(one).later_updates == () and build(solve(one)).later == ()
    with pytest.raises(RenderError, match="--sections: updates"):
        build(solve("sigmoid-222"), view=View(sections=("updates",)))


def test_the_second_online_update_with_momentum_by_hand():
    """o = w x, e = ½ (y − o)², η = 0.1, μ = 0.5, samples (1, 2) then (2, 1), by hand:
    update 1: ∂e/∂w = (0.5 − 2)·1 = −1.5, v = −0.1·(−1.5) = 0.15, w = 0.65;
    update 2: o = 1.3, ∂e/∂w = (1.3 − 1)·2 = 0.6, v = 0.5·0.15 − 0.1·0.6 = 0.015, w = 0.665."""
    raw = {"network": {"layers": [1, 1], "activation": "linear", "bias": "none", "loss": "half_sse"},
           "data": {"x": [[1], [2]], "y": [[2], [1]]}, "init": {"W1": [[0.5]]},
           "train": {"learning_rate": 0.1, "steps": 2, "batch": "online", "momentum": 0.5}}
    sol = solve(raw)
    (second,) = sol.later_updates
    w = sol.network.parameters[0]
    assert second.spec.optimizer.velocity == (sp.Rational(3, 20),)
    assert second.training.first.gradient[w] == sp.Rational(3, 5)
    assert second.training.first.updated[w] == sp.Rational(133, 200)
    (later,) = build(sol).later
    rows = [(r.relation, r.tex) for r in later.update.equations[0].rows]
    assert rows[1:] == [("=", r"0.65 + 0.5 \cdot 0.15 - 0.1 \cdot 0.6"), ("=", "0.665")], rows
    assert later.title == "Update 2: sample 2"


SOFTMAX_AFTER_HUGE_RATE = """
[network]
layers = [2, 3, 3]
activation = ["softplus", "softmax"]
loss = "cross_entropy"
bias = "neuron"

[data]
x = [[0.0005, -0.001]]
y = [[0, 1, 0]]

[init]
W1 = [[0.1, 0.3], [-0.2, 0.2], [0.4, -0.1]]
b1 = [0, 0.1, -0.1]
W2 = [[0.2, -0.3, 0.1], [0.5, 0.1, -0.2], [-0.1, 0.4, 0.3]]
b2 = [0, 0, 0]

[train]
learning_rate = 10000000.0
steps = 3
"""


def test_a_softmax_output_of_e_to_the_minus_a_billion_does_not_stop_the_process(tmp_path):
    """After one step at a learning rate of 10⁷ a softmax output is about e^−10⁹. Testing whether it shares digits
    with 1 took 1 − a exactly, a shift of 10⁹ bits: GMP aborted the process (exit 134, no message; found by
    fuzzing). Run in a process of its own, so that a regression cannot stop the test run."""
    spec = tmp_path / "rate.toml"
    spec.write_text(SOFTMAX_AFTER_HUGE_RATE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "derive", "solve", str(spec), "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    history = json.loads(done.stdout)["history"]
    # the initial loss by hand in doubles: softplus hidden units, softmax outputs, −ln of the target's output
    x, W1, b1 = [0.0005, -0.001], [[0.1, 0.3], [-0.2, 0.2], [0.4, -0.1]], [0, 0.1, -0.1]
    W2 = [[0.2, -0.3, 0.1], [0.5, 0.1, -0.2], [-0.1, 0.4, 0.3]]
    h = [math.log1p(math.exp(sum(w * v for w, v in zip(row, x)) + b)) for row, b in zip(W1, b1)]
    z = [sum(w * v for w, v in zip(row, h)) for row in W2]
    assert len(history) == 4 and history[0] == pytest.approx(-(z[1] - math.log(sum(map(math.exp, z)))), rel=1e-12)
