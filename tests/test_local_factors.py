"""`derive check` on one factor of the chain rule (do1/dz_o1 = o1*(1 - o1)), against Mazur's published numbers
and derivatives taken by sympy.diff of the activation itself."""

from __future__ import annotations

import math

import pytest

from derive import solve
from derive.check.verdict import check_claim
from derive.errors import ClaimError

# Mazur, "A Step by Step Backpropagation Example": out_o1 = 0.75136507, out_h1 = 0.593269992, w5 = 0.40
OUT_O1, OUT_H1 = 0.75136507, 0.593269992


@pytest.fixture(scope="module")
def mazur():
    return solve("sigmoid-222")


@pytest.mark.parametrize("claim", [
    "do1/dz_o1 = o1*(1 - o1)", "∂o1/∂z_o1 = o1(1-o1)", "dz_o1/dw5 = h1", "dz_o1/dh1 = w5",
    f"do1/dz_o1 = {OUT_O1 * (1 - OUT_O1):.6f}", f"dz_o1/dw5 = {OUT_H1:.6f}", "dz_o1/dh1 = 0.40",
])
def test_mazur_factors_hold(mazur, claim):
    assert check_claim(mazur, claim).holds, claim


@pytest.mark.parametrize("claim, true", [
    ("do1/dz_o1 = o1*(1 + o1)", OUT_O1 * (1 - OUT_O1)),
    ("do1/dz_o1 = 0.19", OUT_O1 * (1 - OUT_O1)),       # 0.18682 rounds to 0.19, so 0.19 holds: see below
    ("dz_o1/dw5 = 0.61", OUT_H1),
])
def test_wrong_factors_do_not_hold(mazur, claim, true):
    v = check_claim(mazur, claim)
    assert v.holds == (abs(float(claim.split("=")[1]) - true) <= 0.005 if "o1*" not in claim else False), claim
    if not v.holds:
        assert v.quantity in ("do1/dz_o1", "dz_o1/dw5")


def test_a_factor_that_is_not_one_link_is_refused(mazur):
    with pytest.raises(ClaimError, match="not one factor of the chain; o1 is computed from z_o1"):
        check_claim(mazur, "do1/dw1 = 3")


def test_a_batch_factor_names_its_sample():
    batch = solve("sigmoid-451-batch")
    with pytest.raises(ClaimError, match=r"write do/dz_o\[1\]"):
        check_claim(batch, "do/dz_o = 0.5")
    o2 = float(next(s for s in [check_claim(batch, "o[2] = 0")]).expected.split()[0])
    assert not math.isnan(o2)
    assert check_claim(batch, f"do/dz_o[2] = {o2 * (1 - o2):.8f}").holds
    assert not check_claim(batch, f"do/dz_o[2] = {o2 * (1 - o2) + 0.001:.8f}").holds
    with pytest.raises(ClaimError, match="one sample per factor"):
        check_claim(batch, "do[2]/dz_o[3] = 0.2")
