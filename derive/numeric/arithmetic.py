"""A formula worked out at numbers as SymPy's substitution and evalf would, without SymPy's arithmetic.

SymPy substitutes the numbers into a formula and evaluates it (``xreplace``, then ``evalf``); most of that time
goes to its assumptions system, milliseconds per formula. Walking the formula once with Fractions and mpmath
numbers gives the same value: exact wherever SymPy stays exact (rationals; a function SymPy itself evaluates
exactly at a rational, such as e⁰ = 1, σ(0) = ½ or a ReLU; a product with a factor 0), otherwise in mpmath at the
asked digits plus GUARD bits, then rounded to those digits as evalf rounds. A node this walk does not know raises
Unsupported, and the caller lets SymPy do the work.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping, Union

import mpmath
import sympy as sp
from mpmath import libmp
from sympy import Expr, Symbol

from derive.model.registry import NUMERIC

GUARD = 24                  # bits beyond the asked digits: the last digit then comes out as evalf rounds it

Number = Union[Fraction, mpmath.mpf]


class Unsupported(Exception):
    """A node the walk does not know: the caller evaluates the formula with SymPy instead."""


def _mpf(value: sp.Float) -> mpmath.mpf:
    """A SymPy Float as an mpf with every bit it has, whatever the working precision."""
    out = object.__new__(mpmath.mpf)
    out._mpf_ = value._mpf_
    return out


def number(value: Expr) -> Number:
    """A SymPy number as a Fraction (rationals) or an mpf (floats)."""
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    if value.is_Float:
        return _mpf(value)
    raise Unsupported(f"not a number: {type(value).__name__}")


def within(a: Expr, b: Expr, digits: int, scale: Number = Fraction(1)) -> bool:
    """|a − b| ≤ max(|a|, |b|, scale)/10^digits for two SymPy numbers: in Fractions where both are exact, else in
    mpmath at the finer one's precision and GUARD bits more, as SymPy's arithmetic decides it without its cost.
    Unsupported for anything but a rational or a finite float."""
    with mpmath.workprec(max(getattr(a, "_prec", 0), getattr(b, "_prec", 0), 53) + GUARD):
        return close(number(a), number(b), digits, scale)


def close(x: Number, y: Number, digits: int, scale: Number = Fraction(1)) -> bool:
    """``within`` for numbers already converted (a Point's), in mpmath at the caller's working precision: a check of
    hundreds of values at one sample converts none of them again. ``scale``: the magnitude below which a difference
    is measured absolutely (where nearly equal terms cancel); 1 unless the caller knows the terms."""
    if isinstance(x, Fraction) and isinstance(y, Fraction) and isinstance(scale, Fraction):
        return abs(x - y) <= max(abs(x), abs(y), scale) / 10 ** digits
    x, y = as_mpf(x), as_mpf(y)
    if not (mpmath.isfinite(x) and mpmath.isfinite(y)):
        raise Unsupported("not a finite number")
    return abs(x - y) <= max(abs(x), abs(y), as_mpf(scale)) / mpmath.mpf(10) ** digits


def total(products: list[list[Number]]) -> Number:
    """The sum of products of numbers, exact where every one is (a rule δ_j a_k + … at a Point's numbers)."""
    return _add([_mul(factors) for factors in products])


class Point:
    """One sample's numbers by symbol, each converted once from SymPy."""

    def __init__(self, values: Mapping[Symbol, Expr] | None = None):
        self.values: dict[Symbol, Number] = {}
        for symbol, value in (values or {}).items():
            self[symbol] = value

    def __setitem__(self, symbol: Symbol, value: Expr) -> None:
        self.values[symbol] = number(value)

    def __getitem__(self, symbol: Symbol) -> Number:
        try:
            return self.values[symbol]
        except KeyError:
            raise Unsupported(f"no value for {symbol}") from None


def value_at(expr: Expr, point: Point, digits: int) -> Expr:
    """``expr`` at the point's numbers: a Rational where SymPy stays exact, else a Float of ``digits`` digits."""
    prec = libmp.dps_to_prec(digits)
    with mpmath.workprec(prec + GUARD):
        result = walk(expr, point)
    if isinstance(result, Fraction):
        return sp.Rational(result.numerator, result.denominator)
    if not mpmath.isfinite(result):
        raise Unsupported("not a finite number")
    return sp.Float._new(libmp.mpf_pos(result._mpf_, prec, libmp.round_nearest), prec)


def walk(expr: Expr, point: Point) -> Number:
    """The value of one node, its arguments first; Piecewise takes only the branch its conditions choose."""
    if expr.is_Symbol:
        return point[expr]
    if expr.is_Number:
        return number(expr)
    if isinstance(expr, sp.Piecewise):
        for branch, condition in expr.args:
            if condition is sp.true or _holds(condition, point):
                return walk(branch, point)
        raise Unsupported("no branch of a Piecewise holds")
    rule = _RULES.get(type(expr))
    args = [walk(a, point) for a in expr.args]
    if rule is not None:
        return rule(args)
    return _function(expr, args)


def _holds(condition: Any, point: Point) -> bool:
    compare = _COMPARISONS.get(type(condition))
    if compare is None:
        raise Unsupported(f"a condition {type(condition).__name__}")
    a, b = (walk(side, point) for side in condition.args)
    return compare(*_common(a, b))


_COMPARISONS: dict[type, Callable[[Any, Any], bool]] = {
    sp.StrictGreaterThan: lambda a, b: a > b, sp.GreaterThan: lambda a, b: a >= b,
    sp.StrictLessThan: lambda a, b: a < b, sp.LessThan: lambda a, b: a <= b,
}


def _common(*values: Number) -> list[Number]:
    """Exact numbers stay Fractions among themselves; beside an mpf every one becomes an mpf."""
    if all(isinstance(v, Fraction) for v in values):
        return list(values)
    return [as_mpf(v) for v in values]


def as_mpf(value: Number) -> mpmath.mpf:
    """A Fraction at the working precision; an mpf as it is."""
    if isinstance(value, Fraction):
        return mpmath.mpf(value.numerator) / value.denominator
    return value


def _zero(value: Number) -> bool:
    return value == 0


def _add(args: list[Number]) -> Number:
    values = _common(*args)
    if isinstance(values[0], Fraction):
        return sum(values, Fraction(0))
    return mpmath.fsum(values)


def _mul(args: list[Number]) -> Number:
    if any(_zero(a) for a in args):          # SymPy's 0·x is the exact 0, whatever x is
        return Fraction(0)
    values = _common(*args)
    if isinstance(values[0], Fraction):
        return math.prod(values, start=Fraction(1))
    return mpmath.fprod(values)


def _pow(args: list[Number]) -> Number:
    base, exponent = args
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        if _zero(base) and exponent < 0:
            raise Unsupported("1/0")
        return base ** int(exponent)
    if isinstance(base, Fraction) or as_mpf(base) <= 0:
        raise Unsupported("a root of an exact or negative number")     # √2 stays symbolic in SymPy
    return base ** as_mpf(exponent)


def _heaviside(args: list[Number]) -> Number:
    z, at_zero = args if len(args) == 2 else (args[0], None)
    if z == 0:
        if at_zero is None:
            raise Unsupported("Heaviside at 0 without its value there")
        return at_zero
    return Fraction(1 if z > 0 else 0)


def _extreme(pick: Callable[..., Any]) -> Callable[[list[Number]], Number]:
    def run(args: list[Number]) -> Number:
        return pick(args, key=as_mpf)
    return run


_RULES: dict[type, Callable[[list[Number]], Number]] = {
    sp.Add: _add, sp.Mul: _mul, sp.Pow: _pow, sp.Heaviside: _heaviside,
    sp.Max: _extreme(max), sp.Min: _extreme(min), sp.Abs: lambda args: abs(args[0]),
}

# SymPy's own functions in mpmath; derive's come from the registry's mpmath forms
_MPMATH: dict[type, Callable[..., Any]] = {sp.exp: mpmath.exp, sp.log: mpmath.log, sp.tanh: mpmath.tanh,
                                           sp.cosh: mpmath.cosh, sp.sinh: mpmath.sinh}


def mpmath_form(expr: Expr) -> Callable[..., Any] | None:
    """The mpmath function a function node computes (SymPy's own, or the registry's form of derive's); None."""
    return _MPMATH.get(type(expr)) or (NUMERIC[type(expr).__name__].mp if type(expr).__name__ in NUMERIC else None)


def _function(expr: Expr, args: list[Number]) -> Number:
    """A function of numbers: SymPy decides at exact arguments whether the value is exact (σ(0) = ½, e^{7/20} is
    not), mpmath computes every value that is not."""
    form = mpmath_form(expr)
    if form is None:
        raise Unsupported(f"a function {type(expr).__name__}")
    if all(isinstance(a, Fraction) for a in args):
        exact = expr.func(*(sp.Rational(a.numerator, a.denominator) for a in args))
        if exact.is_Rational:
            return Fraction(int(exact.p), int(exact.q))
    result = form(*(as_mpf(a) for a in args))
    if isinstance(result, int):              # an mpmath form's exact 0 (a ReLU below its kink)
        return Fraction(result)
    return result


def propagated(expr: Expr, point: Point) -> mpmath.mpf:
    """How far ``expr``'s value moves, to first order, when each number it is made of moves by one part in 10^d,
    in units of 10^−d: Σ over its inputs x of |∂expr/∂x|·|x|, node by node (a sum adds its terms', a product weighs
    each factor's by the others' magnitudes, b^k is |k b^(k−1)| times its base's, f(a) is |f′(a)| times its
    argument's), and never less than a node's own magnitude, which its own rounding moves by as much.

    The allowance of a formula's check where nearly equal numbers cancel: o − y with o = 1 − 10⁻⁸⁰⁰ is known to
    the digits o is known to, not to its own; a product with such a difference stays as small as it is (1 would
    let a formula twice too large pass), and a division by one grows as the quotient does (bce's 1/(o(1 − o))).
    In mpmath at the caller's working precision; Unsupported for a node it does not know."""
    return _propagated(expr, point)[1]


def _propagated(expr: Expr, point: Point) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(value, propagated magnitude) of one node."""
    if expr.is_Symbol or expr.is_Number:
        value = as_mpf(point[expr] if expr.is_Symbol else number(expr))
        return value, abs(value)
    if isinstance(expr, sp.Piecewise):
        for branch, condition in expr.args:
            if condition is sp.true or _holds(condition, point):
                return _propagated(branch, point)
        raise Unsupported("no branch of a Piecewise holds")
    if isinstance(expr, sp.Heaviside):          # a step: exact wherever its argument is not 0
        value = as_mpf(walk(expr, point))
        return value, abs(value)
    parts = [_propagated(a, point) for a in expr.args]
    rule = _PROPAGATE.get(type(expr))
    if rule is not None:
        return rule(parts)
    return _propagated_function(expr, point, parts)


def _propagated_add(parts: list[tuple[mpmath.mpf, mpmath.mpf]]) -> tuple[mpmath.mpf, mpmath.mpf]:
    return mpmath.fsum(v for v, _ in parts), mpmath.fsum(m for _, m in parts)


def _propagated_mul(parts: list[tuple[mpmath.mpf, mpmath.mpf]]) -> tuple[mpmath.mpf, mpmath.mpf]:
    sizes = [abs(v) for v, _ in parts]
    spread = mpmath.fsum(m * mpmath.fprod(sizes[:i] + sizes[i + 1:]) for i, (_, m) in enumerate(parts))
    return mpmath.fprod(v for v, _ in parts), spread


def _propagated_pow(parts: list[tuple[mpmath.mpf, mpmath.mpf]]) -> tuple[mpmath.mpf, mpmath.mpf]:
    (base, spread), (k, _) = parts
    if base == 0:
        raise Unsupported("a power of 0")
    value = base ** k
    return value, max(abs(value), abs(k * value / base) * spread)


def _propagated_function(expr: Expr, point: Point,
                         parts: list[tuple[mpmath.mpf, mpmath.mpf]]) -> tuple[mpmath.mpf, mpmath.mpf]:
    """f(a): |f′(a)| times a's, by the function's own derivative (SymPy's fdiff, the registry's for derive's)."""
    if len(parts) != 1:
        raise Unsupported(f"a function {type(expr).__name__} of {len(parts)} arguments")
    value = as_mpf(walk(expr, point))
    slope = as_mpf(walk(expr.fdiff(1), point))
    return value, max(abs(value), abs(slope) * parts[0][1])


_PROPAGATE: dict[type, Callable[[list[tuple[mpmath.mpf, mpmath.mpf]]], tuple[mpmath.mpf, mpmath.mpf]]] = {
    sp.Add: _propagated_add, sp.Mul: _propagated_mul, sp.Pow: _propagated_pow,
    sp.Abs: lambda parts: (abs(parts[0][0]), parts[0][1]),
}


def known_digits(values: Iterable[Expr]) -> int:
    """The decimal digits the least precise of these SymPy numbers is known to (exact ones are known to all)."""
    return min((libmp.prec_to_dps(v._prec) for v in values if v.is_Float), default=10 ** 6)


def agrees(a: Expr, b: Expr, digits: int, expr: Expr, point: Point, known: int) -> bool:
    """``expr``'s value ``a`` against ``b``: |a − b| ≤ max(|a|, |b|)/10^digits + propagated(expr)/10^(known − 5),
    ``known`` the digits the least precise number of ``expr`` is known to (taken as no fewer than ``digits`` + 5):
    a difference of nearly equal numbers is as exact as they are. In mpmath at the finest precision there and GUARD
    bits more; Unsupported as ``within``."""
    finest = max(getattr(a, "_prec", 0), getattr(b, "_prec", 0), 53, libmp.dps_to_prec(known))
    with mpmath.workprec(finest + GUARD):
        x, y = as_mpf(number(a)), as_mpf(number(b))
        if not (mpmath.isfinite(x) and mpmath.isfinite(y)):
            raise Unsupported("not a finite number")
        allowance = max(abs(x), abs(y)) / mpmath.mpf(10) ** digits
        if abs(x - y) <= allowance:         # the relative test alone, most of the time: no magnitude to work out
            return True
        spread = propagated(expr, point)
        return bool(abs(x - y) <= allowance + spread / mpmath.mpf(10) ** (max(digits + 5, known) - 5))
