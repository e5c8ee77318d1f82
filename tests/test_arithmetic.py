"""The exact step's arithmetic (derive/numeric/arithmetic.py) against SymPy and against mpmath far beyond 60 digits.

Two things must hold for every formula: the value is exact exactly where SymPy's substitution is (a Rational,
equal to SymPy's), and otherwise it is the true value rounded to the asked digits, within one unit of the last
bit of a 60-digit float (the truth: SymPy's evalf of the same substitution at 400 digits)."""

from __future__ import annotations

import os
import tomllib

import mpmath
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from mpmath import libmp

from derive.derived.solution import Solution
from derive.model.registry import ReLU, Sigmoid, Softplus
from derive.model.examples import example_text
from derive.model.spec import load, parse
from derive.numeric import arithmetic
from derive.numeric.arithmetic import Point, Unsupported, propagated, value_at
from derive.numeric.values import PRECISION, exact, saturation_digits, value

SYMBOLS = sp.symbols("u v w")
TRUTH_DIGITS = 400


def true_value(expr: sp.Expr, env: dict) -> sp.Expr:
    """The formula at the numbers with nothing rounded on the way: each float as the exact binary fraction it is
    (SymPy's own substitution rounds every sum and product of floats to their precision), then 400 digits."""
    return expr.xreplace({k: sp.Rational(v) if v.is_Float else v for k, v in env.items()}).evalf(TRUTH_DIGITS)


def ulps(ours: sp.Float, truth: sp.Expr) -> mpmath.mpf:
    """How many units of the last bit of ``ours`` lie between it and the true value."""
    with mpmath.workprec(2000):
        exact_value = mpmath.mpf(sp.Float(truth, TRUTH_DIGITS)._mpf_)
        if exact_value == 0:
            return mpmath.mpf(0) if ours == 0 else mpmath.inf
        unit = mpmath.mpf(2) ** (mpmath.floor(mpmath.log(abs(exact_value), 2)) + 1 - ours._prec)
        return abs(mpmath.mpf(ours._mpf_) - exact_value) / unit


def agrees(expr: sp.Expr, env: dict, digits: int = PRECISION) -> None:
    reference = exact(expr.xreplace(env), digits)
    ours = value_at(expr, Point(env), digits)
    assert ours.is_Rational == reference.is_Rational, (expr, env, ours, reference)
    if reference.is_Rational:
        assert ours == reference
        return
    assert ours._prec == libmp.dps_to_prec(digits)
    assert ulps(ours, true_value(expr, env)) <= 1, (expr, env)


# -- formulas as derive writes them, over rationals and floats ---------------------------------------------

numbers = st.one_of(
    st.fractions(min_value=-5, max_value=5, max_denominator=50).map(lambda f: sp.Rational(f.numerator, f.denominator)),
    st.floats(min_value=-5, max_value=5, allow_nan=False).filter(lambda x: x != 0).map(lambda x: sp.Float(x, 60)))
leaves = st.one_of(st.sampled_from(SYMBOLS), st.sampled_from([sp.S.Zero, sp.S.One, sp.S.Half, sp.Integer(-2)]))


def _apply(f, z):
    """f(z), or 1 where SymPy cannot even build it (a Piecewise comparing zoo, from a leaf 1/0)."""
    try:
        return f(z)
    except TypeError:
        return sp.S.One


def _extend(inner):
    one = st.sampled_from([sp.exp, sp.tanh, Sigmoid, Softplus, ReLU, lambda z: sp.Heaviside(z, 0), sp.cosh,
                           lambda z: sp.Piecewise((z, z > 0), (z / 100, True))])
    return st.one_of(
        st.tuples(inner, inner).map(lambda p: p[0] + p[1]),
        st.tuples(inner, inner).map(lambda p: p[0] * p[1]),
        st.tuples(inner, st.sampled_from([2, 3, -1])).map(lambda p: p[0] ** p[1]),
        st.tuples(one, inner).map(lambda p: _apply(*p)))


formulas = st.recursive(leaves, _extend, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(formulas, st.lists(numbers, min_size=3, max_size=3))
def test_every_formula_is_exact_where_sympy_is_and_correctly_rounded_elsewhere(expr, values):
    env = dict(zip(SYMBOLS, values))
    try:
        reference = exact(expr.xreplace(env))
    except (ZeroDivisionError, AssertionError, TypeError, ValueError):
        return                        # 1/0 and the like: SymPy leaves no number either
    if not reference.is_finite:
        return
    try:
        ours = value_at(expr, Point(env), PRECISION)
    except Unsupported:
        return                        # the caller falls back to SymPy: test_a_node_without_a_rule_falls_back
    assert ours.is_Rational == reference.is_Rational, (expr, env, ours, reference)
    if reference.is_Rational:
        assert ours == reference
    else:
        assert ulps(ours, true_value(expr, env)) <= 1, (expr, env, ours)


def test_exact_values_stay_exact():
    u, v, w = SYMBOLS
    half = sp.Rational(1, 2)
    cases = [(Sigmoid(u), {u: 0}, half), (sp.exp(u - v), {u: 1, v: 1}, 1), (ReLU(u), {u: -3}, 0),
             (ReLU(u) * v, {u: sp.Rational(7, 20), v: 2}, sp.Rational(7, 10)), (sp.Heaviside(u, 0), {u: 0}, 0),
             (u * sp.exp(v), {u: 0, v: sp.Float(2.5, 60)}, 0), (sp.tanh(u) + w, {u: 0, w: sp.Rational(1, 3)},
                                                               sp.Rational(1, 3))]
    for expr, env, expected in cases:
        out = value_at(expr, Point({k: sp.sympify(x) for k, x in env.items()}), PRECISION)
        assert out == expected and out.is_Rational


def test_a_saturated_sigmoid_keeps_its_digits():
    """σ(−3000) = 1/(1 + e^3000) ≈ 10^−1303: at 1,500 digits every one is right (mpmath at 1,600 as the truth)."""
    z = SYMBOLS[0]
    ours = value_at(Sigmoid(z), Point({z: sp.Integer(-3000)}), 1500)
    with mpmath.workdps(1600):
        truth = 1 / (1 + mpmath.exp(3000))
        assert abs(mpmath.mpf(ours._mpf_) - truth) / truth < mpmath.mpf(10) ** -1499


@pytest.mark.parametrize("expr", [sp.gamma(SYMBOLS[0]), sp.sqrt(SYMBOLS[0]), SYMBOLS[0] + sp.Symbol("unset")])
def test_a_node_without_a_rule_falls_back_to_sympy(expr):
    env = {SYMBOLS[0]: sp.Rational(3, 2), sp.Symbol("unset"): sp.Rational(1, 4)}
    point = Point({SYMBOLS[0]: sp.Rational(3, 2)})
    with pytest.raises(Unsupported):
        value_at(expr, point, PRECISION)
    assert value(expr, env, PRECISION, point) == exact(expr.xreplace(env))


# -- every example's exact step -----------------------------------------------------------------------------

EXAMPLES = sorted(f[:-5] for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "derive", "examples"))
                  if f.endswith(".toml"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_value_of_every_examples_exact_step_agrees_with_sympy(name):
    s = Solution(load(name))
    d = s.derivation
    for env in s.training.first.samples:
        formulas = [d.safe_definitions[x] for x in d.network.order]
        formulas += [d.safe_gradient[v] for v in d.backward_order if v not in d.vanishing]
        formulas += [d.safe(e.local) for v in d.backward_order for e in d.edges[v]]
        for expr in formulas:
            agrees(expr, env)


def test_the_saturation_test_sees_a_distance_far_below_double_precision():
    """A sigmoid unit at z ≈ 660 shares about 287 digits with 1: saturation_digits finds that many (from 1 − a
    exactly, not from a rounded to a double's 53 bits, whose 1 − a is 0), as log10(1 + e^z) says at 600 digits."""
    raw = tomllib.loads(example_text("sigmoid-222"))
    raw["data"]["x"] = [["3000", "-300"]]
    sol = Solution(parse(raw, "hot.toml"))
    net, env = sol.network, sol.training.first.samples[0]
    with mpmath.workdps(600):
        expected = max(mpmath.log10(1 + mpmath.exp(mpmath.mpf(sp.Float(env[z], 600)._mpf_)))
                       for layer in net.nets for z in layer)
    assert 100 < expected and abs(saturation_digits(net, env) - float(expected)) < 1e-6


# -- the magnitude a formula's numbers carry to its value (propagated) ----------------------------

_o, _y, _z, _w = sp.symbols("o y z w", real=True)


def _sensitivity(expr: sp.Expr, at: dict) -> mpmath.mpf:
    """Σ_x |∂expr/∂x|·|x| at ``at`` by sympy.diff, evaluated at 200 digits: the first-order movement of expr when
    every number moves by one part in 10^d (in units of 10^−d), which ``propagated`` must not be below."""
    return sum(abs(mpmath.mpf(sp.N(sp.diff(expr, s).subs(at), 200))) * abs(mpmath.mpf(sp.N(v, 200)))
               for s, v in at.items() if s in expr.free_symbols)


FORMULAS = [(_o - _y) * _o * (1 - _o), (_o - _y) / (_o * (1 - _o)), _w * _o * (1 - _o) + _y, 1 / sp.cosh(_z) ** 2,
            Sigmoid(-_z) * (_o - _y), sp.exp(_z) * _w - _o, (_o - _y) ** 2 / 2, 2 * (_o - _y) / 3]


@pytest.mark.parametrize("expr", FORMULAS, ids=str)
@given(o=st.floats(-3, 3), y=st.floats(-3, 3), z=st.floats(-20, 20), w=st.floats(-5, 5))
@settings(max_examples=25, deadline=None)
def test_propagated_is_at_least_the_first_order_movement_and_the_value(expr, o, y, z, w):
    at = {_o: sp.Float(o, 60), _y: sp.Float(y, 60), _z: sp.Float(z, 60), _w: sp.Float(w, 60)}
    try:
        with mpmath.workdps(200):
            bound = propagated(expr, Point(at))
    except Unsupported:         # a power of 0: no bound, the caller falls back
        return
    with mpmath.workdps(200):
        value = mpmath.mpf(sp.N(expr.subs(at), 200))
        slack = mpmath.mpf(10) ** -50 * (bound + 1)      # the sides are worked from 60-digit numbers
        assert bound + slack >= _sensitivity(expr, at)
        assert bound + slack >= abs(value)


def test_a_difference_of_nearly_equal_numbers_is_as_exact_as_they_are():
    """o = 1 − 10⁻⁸⁰⁰ at 1,000 digits: δ = (o − y) o (1 − o) is about 10⁻¹⁶⁰⁰, and a value twice that is refused where
    an allowance of 1 (or of the value's inputs' size) would have let it pass; the true value agrees."""
    o = sp.Float(1, 1000) - sp.Float(10, 1000) ** -800
    at = {_o: o, _y: sp.Integer(1)}
    form = (_o - _y) * _o * (1 - _o)
    truth = sp.Float((o - 1) * o * (1 - o), 1000)
    assert arithmetic.agrees(truth * (1 + sp.Float(10, 1000) ** -40), truth, 25, form, Point(at), 1000)
    assert not arithmetic.agrees(2 * truth, truth, 25, form, Point(at), 1000)
    # known to 60 digits only, o − y is 0 ± 10⁻⁶⁰: the numbers cannot tell the two apart, and the check says so
    assert arithmetic.agrees(2 * truth, truth, 25, form, Point(at), 60)
