"""ELU, added as one registry entry: its numbers against PyTorch and mpmath, its claims, documents and exam."""

from __future__ import annotations

import json

import mpmath
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from derive import solve
from derive.check.verdict import check_claim
from derive.exam.generate import generate
from derive.model.plain import plain
from derive.model.registry import ACTIVATIONS
from derive.model.spec import loads
from derive.numeric.tape import compile_gradient
from derive.text.render import render_solution
from tests.test_training import against_torch, spec

# a 2-2-1 network whose second hidden unit sits on ELU's exponential piece: z_h1 = 0.1, z_h2 = −0.8
ELU_221 = """
[network]
layers = [2, 2, 1]
activation = ["elu", "sigmoid"]
bias = "neuron"
loss = "half_sse"
[data]
x = [[0.5, -1.0]]
y = [[1.0]]
[init]
W1 = [[0.4, 0.3], [-0.2, 0.6]]
b1 = [0.2, -0.1]
W2 = [[0.7, -0.5]]
b2 = [0.2]
[train]
learning_rate = 0.5
steps = 2
"""


def test_the_entry_is_elu():
    # f′(z, a) as the entry writes it is d/dz of its f on both pieces; its doubles are expm1's
    elu = ACTIVATIONS["elu"]
    z = sp.Symbol("z", real=True)
    for point in (sp.Rational(-7, 3), sp.Rational(5, 4)):
        assert sp.simplify((sp.diff(elu.f(z), z) - elu.df(z, elu.f(z))).subs(z, point)) == 0
    assert elu.f(sp.Integer(-2)) == sp.exp(-2) - 1 and elu.f(sp.Integer(3)) == 3
    assert elu.double(-1e-12) == pytest.approx(-1e-12 + 5e-25, rel=1e-15)       # expm1, not exp(z) − 1
    assert elu.piecewise and not elu.identity and elu.df_factor


ELU_CASES = {
    "elu hidden, sigmoid output, bce": spec([2, 3, 1], ["elu", "sigmoid"], "bce", {"steps": 5, "learning_rate": 0.7}),
    "elu everywhere, mse, online": spec([3, 2, 2], ["elu", "elu"], "mse", {"batch": "online", "steps": 6}, n=3),
    "elu into softmax, momentum": spec([2, 3, 3], ["elu", "softmax"], "cross_entropy",
                                       {"momentum": 0.9, "steps": 4, "learning_rate": 0.5}, n=3),
    "elu deep, shared bias": spec([2, 2, 2, 1], ["elu", "tanh", "linear"], "half_sse", {"steps": 4}, bias="shared"),
}


@pytest.mark.parametrize("name", sorted(ELU_CASES))
def test_elu_networks_train_as_pytorch_does(name):
    # history, first update and final parameters against torch.nn.functional.elu (α = 1) in float64
    against_torch(ELU_CASES[name])


def test_a_saturated_elu_unit_keeps_its_slope():
    # z = −60: f′ = e^−60 ≈ 8.8e−27, which a + 1 (a = e^z − 1 rounded to −1) would make 0; reference: mpmath
    raw = {"network": {"layers": [1, 1, 1], "activation": ["elu", "linear"], "bias": "none", "loss": "half_sse"},
           "data": {"x": [[1]], "y": [[2]]}, "init": {"W1": [[-60]], "W2": [[3]]},
           "train": {"learning_rate": 0.1, "steps": 3}}
    report = solve(raw).json()
    with mpmath.workdps(50):
        h = mpmath.expm1(-60)
        o = 3 * h
        true = (o - 2) * 3 * mpmath.exp(-60) * 1          # ∂E/∂w1 = (o − y)·w2·f′(z)·x
    assert report["gradients"]["W1"][0][0] == pytest.approx(float(true), rel=1e-14)
    assert report["gradients"]["W1"][0][0] != 0
    # the float tape that takes the later steps keeps it too (PyTorch's ELU backward also takes e^z from z)
    sol = solve(raw)
    params = [float(sol.training.first.parameters[p]) for p in sol.derivation.network.parameters]
    _, tape = compile_gradient(sol.derivation)(params, [1.0], [2.0])
    w1 = torch.tensor([[-60.0]], dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor([[3.0]], dtype=torch.float64, requires_grad=True)
    (0.5 * ((2 - F.elu(torch.tensor([[1.0]], dtype=torch.float64) @ w1.T) @ w2.T) ** 2).sum()).backward()
    assert tape[0] == pytest.approx(w1.grad.item(), rel=1e-14) and tape[0] == pytest.approx(float(true), rel=1e-14)
    assert tape[1] == pytest.approx(w2.grad.item(), rel=1e-14)


def test_claims_about_elu_are_read_and_diagnosed():
    sol = solve(loads(ELU_221, "elu.toml"))
    held = check_claim(sol, "dE/dw3 = (o - y)*o*(1 - o)*w6*elu'(z_h2)*x1")
    assert held.holds and held.precision == "all values of its symbols"
    sigmoid_slope = check_claim(sol, "dE/dw3 = (o - y)*o*(1 - o)*w6*h2*(1 - h2)*x1")
    assert not sigmoid_slope.holds and sigmoid_slope.mistake == "wrong_activation_derivative"
    assert "elu'(z_h2)" in sigmoid_slope.expected
    dropped = check_claim(sol, "dE/dw3 = (o - y)*o*(1 - o)*w6*x1")
    assert not dropped.holds and dropped.mistake == "missing_activation_derivative"
    # h2 = z_h2 is right where z > 0: the checker tries ELU networks at points with either sign of z
    assert check_claim(sol, "h2 = z_h2").mistake == "wrong_activation"
    # a + 1 is ELU's slope on this spec's negative z only
    assert check_claim(sol, "dE/dw3 = (o - y)*o*(1 - o)*w6*(h2 + 1)*x1").mistake == "not_general"
    # by hand: o = σ(0.2 + 0.7·0.1 − 0.5·(e^−0.8 − 1)) ≈ 0.633053; ∂E/∂w3 = (o − 1)·o(1 − o)·(−0.5)·e^−0.8·0.5
    h2 = mpmath.expm1(-0.8)
    o = 1 / (1 + mpmath.exp(-(0.2 + 0.07 - 0.5 * h2)))
    by_hand = (o - 1) * o * (1 - o) * -0.5 * mpmath.exp(-0.8) * 0.5
    assert check_claim(sol, f"dE/dw3 = {mpmath.nstr(by_hand, 8)}").holds


def test_every_formula_in_the_json_is_a_claim_that_holds():
    sol = solve(loads(ELU_221, "elu.toml"))
    formulas = sol.json()["formulas"]
    assert formulas["delta_h2"] == "dE/dh2*elu'(z_h2)"
    for name, formula in formulas.items():
        assert check_claim(sol, f"{name} = {formula}").holds, (name, formula)


def test_the_plain_printer_spells_elu_and_its_slope():
    z = sp.Symbol("z_h1")
    elu = ACTIVATIONS["elu"]
    assert plain(elu.f(z)) == "elu(z_h1)" and plain(elu.df(z, sp.Symbol("h1"))) == "elu'(z_h1)"


@pytest.mark.parametrize("fmt", ["md", "tex", "html"])
def test_the_documents_write_elu(fmt):
    text = render_solution(solve(loads(ELU_221, "elu.toml")), fmt)
    assert "ELU" in text and "e^{z}" in text
    # the slope of h2 at z = −0.8 is e^−0.8 = 0.449329, printed in its chain
    assert "0.449329" in text


def test_an_exam_on_an_elu_network_keeps_its_answers_true():
    exam = generate(loads(ELU_221, "elu.toml"), variants=4, seed=3, jobs=1)
    for variant in exam.json():
        raw = variant["spec"]
        report = solve(raw).json()
        for q in variant["questions"]:
            if q["quantity"] == "E":
                assert abs(q["answer"] - report["loss"]) <= 0.5 * 10 ** -4 + 1e-12
    assert json.dumps(exam.json())       # answers.json is plain JSON
