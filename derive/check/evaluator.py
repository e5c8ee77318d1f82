"""The checker's evaluator: claims and the derivation's formulas at 40 digits (mpmath), and how it shows numbers."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import mpmath
import sympy as sp
from sympy import Expr, Symbol

from derive.check.claims import SampleSum
from derive.model.registry import wide_forms
from derive.numeric.rounding import fixed, short

DIGITS = 40                 # working precision of every check
AGREE = mpmath.mpf("1e-25")  # relative agreement of two values that are equal

MP = mpmath.MPContext()
MP.dps = DIGITS


class Undefined(ArithmeticError):
    """A claim's value does not exist at a point (division by 0, log 0, overflow)."""


# -- numbers -----------------------------------------------------------------------------------

def to_mpf(value: Expr) -> Any:
    if value.is_Rational:
        return MP.mpf(int(value.p)) / int(value.q)
    return MP.mpf(str(sp.Float(value, DIGITS + 5)))


def finite(v: Any) -> Any:
    if isinstance(v, MP.mpc):
        if abs(v.imag) <= abs(v.real) * MP.mpf("1e-35"):
            v = v.real
        elif not (MP.isfinite(v.real) and MP.isfinite(v.imag)):
            raise Undefined
        else:
            return v
    if not MP.isfinite(v):
        raise Undefined
    return v


def _power(base: Any, exponent: Any) -> Any:
    if base == 0:
        if MP.re(exponent) <= 0:
            raise Undefined
        return MP.mpf(0)
    if abs(exponent) > 10_000 or abs(MP.re(exponent) * MP.log(abs(base))) > 10_000:
        raise Undefined
    if isinstance(exponent, MP.mpf) and exponent == int(exponent):
        return base ** int(exponent)
    return base ** exponent


def _exp(x: Any) -> Any:
    if MP.re(x) > 10_000:
        raise Undefined
    return MP.exp(x)


def _log(x: Any) -> Any:
    if x == 0:
        raise Undefined
    return MP.log(x)


def _truth(x: Any) -> bool:
    return MP.re(x) > 0


# each symbol's value, and Σₙ of an expression over the samples (None: no samples to sum over)
Getter = Callable[[Symbol], Any]
Summer = Callable[[Expr], Any]


def _compare(rel: Any, get: Getter, summed: Summer | None) -> bool:
    if rel is sp.true:
        return True
    if rel is sp.false:
        return False
    a, b = MP.re(value(rel.lhs, get, summed)), MP.re(value(rel.rhs, get, summed))
    return {sp.StrictGreaterThan: a > b, sp.GreaterThan: a >= b, sp.StrictLessThan: a < b,
            sp.LessThan: a <= b}[type(rel)]


def _number(expr: Expr) -> Any:
    """A SymPy number: a rational or a float; anything else (zoo, nan, oo) is Undefined."""
    if expr.is_Rational:
        return MP.mpf(int(expr.p)) / int(expr.q)
    if expr.is_Float:
        return MP.mpf(str(expr))
    raise Undefined


def _constant(expr: Expr) -> Any:
    """e, i, or another named constant (π)."""
    if expr is sp.E:
        return MP.e
    if expr is sp.I:
        return MP.mpc(0, 1)
    return MP.mpf(str(expr.evalf(DIGITS + 5)))


def _add(expr: Expr, get: Getter, summed: Summer | None) -> Any:
    total = MP.mpf(0)
    for arg in expr.args:
        total += value(arg, get, summed)
    return finite(total)


def _mul(expr: Expr, get: Getter, summed: Summer | None) -> Any:
    result = MP.mpf(1)
    for arg in expr.args:
        result *= value(arg, get, summed)
    return finite(result)


def _pow(expr: Expr, get: Getter, summed: Summer | None) -> Any:
    return finite(_power(value(expr.base, get, summed), value(expr.exp, get, summed)))


def _sample_sum(expr: Expr, get: Getter, summed: Summer | None) -> Any:
    if summed is None:
        raise TypeError("a sum over samples needs the samples")
    return summed(expr.args[0])


def _piecewise(expr: Expr, get: Getter, summed: Summer | None) -> Any:
    """The piece whose condition holds first; Undefined where none does."""
    for piece, condition in expr.args:
        if _compare(condition, get, summed):
            return value(piece, get, summed)
    raise Undefined


def _tanh(x: Any) -> Any:
    return MP.tanh(x) if abs(x) < 10_000 else MP.mpf(1 if _truth(x) else -1)


def _heaviside(args: list[Any]) -> Any:
    """H(z), with its value at 0 as the second argument (½ without one)."""
    z = MP.re(args[0])
    return MP.mpf(1) if z > 0 else MP.mpf(0) if z < 0 else (args[1] if len(args) > 1 else MP.mpf(0.5))


# nodes evaluated from their own parts (a sum over samples from the samples)
_COMPOSITE: dict[type, Callable[[Any, Getter, Summer | None], Any]] = {
    sp.Add: _add, sp.Mul: _mul, sp.Pow: _pow, SampleSum: _sample_sum, sp.Piecewise: _piecewise,
}
# functions of one argument, applied to its value
_UNARY: dict[type, Callable[[Any], Any]] = {
    sp.exp: lambda x: finite(_exp(x)), sp.log: lambda x: finite(_log(x)), sp.tanh: _tanh, sp.Abs: abs,
} | wide_forms(MP)        # the registry's own functions (σ, ReLU, softplus) as its entries compute them


def value(expr: Expr, get: Getter, summed: Summer | None = None) -> Any:
    """``expr`` evaluated at 40 digits with mpmath; ``get`` gives each symbol's value.

    Only the node types the parser and the engine build are known; anything else is Undefined
    (the claim then fails rather than crash), as are overflow and division by zero. A sum over
    samples without ``summed`` is a bug, not user input: TypeError.
    """
    if expr.is_Symbol:
        return get(expr)
    if expr.is_Number:
        return _number(expr)
    head = type(expr)
    if head in _COMPOSITE:
        return _COMPOSITE[head](expr, get, summed)
    if expr is sp.I or expr.is_NumberSymbol:
        return _constant(expr)
    args = [value(a, get, summed) for a in expr.args]
    if head in _UNARY:
        return _UNARY[head](args[0])
    if head is sp.Heaviside:
        return _heaviside(args)
    # SymPy may rewrite a claim into a node the checker does not model: the claim's value is
    # then unknown, which makes it fail rather than crash.
    raise Undefined(f"cannot evaluate {head.__name__}")


_TINY = MP.mpf("1e-34")      # parsed once: close() runs for every candidate at every point


def close(a: Any, b: Any) -> bool:
    return abs(a - b) <= AGREE * max(abs(a), abs(b)) + _TINY


MESSAGE_FIXED = (-5, 9)     # decimal exponents a message writes in fixed notation (0.00001234, 123000000)


def show_number(v: Any, digits: int = 6) -> str:
    """A value in a message, by the one rounding (half away from zero) to ``digits`` significant digits."""
    if isinstance(v, MP.mpc):
        return f"{show_number(v.real, digits)}{'+' if v.imag >= 0 else '-'}{show_number(abs(v.imag), digits)}i"
    if not isinstance(v, Fraction) and not MP.isfinite(v):
        return MP.nstr(v)                     # inf, nan: no digits to round
    return short(v, digits, MESSAGE_FIXED)


def value_text(v: Any, decimals: int | None) -> str:
    """A value with 10 significant digits, and with two decimals more than a claim that has ``decimals``.

    Exact where ``v`` is a Fraction; an mpf has DIGITS digits to give.
    """
    digits = 10
    if decimals is not None and v != 0:
        magnitude = MP.floor(MP.log10(abs(MP.mpf(v.numerator) / v.denominator if isinstance(v, Fraction) else MP.re(v))))
        digits = max(digits, decimals + 3 + int(magnitude))
    return show_number(v, min(digits, DIGITS - 2) if not isinstance(v, Fraction) else min(digits, 80))


def rounded_text(v: Any, decimals: int, truncate: bool = False) -> str:
    """A claimed or true value (Fraction or mpf) to ``decimals`` places by the one rounding (half away from zero)."""
    return fixed(v if isinstance(v, Fraction) else MP.re(v), decimals, truncate)


def fraction(v: Any) -> Fraction:
    """The exact value of a SymPy number (a Float's binary value) or of an mpf."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, Expr) and v.is_Rational:
        return Fraction(int(v.p), int(v.q))
    if isinstance(v, Expr) and v.is_Float:
        sign, man, exp, _ = v._mpf_
    else:
        sign, man, exp, _ = MP.mpf(v)._mpf_
    if man and exp + man.bit_length() < -FLOOR_BITS:
        return Fraction(0)
    value = Fraction(int(man)) * Fraction(2) ** int(exp)
    return -value if sign else value


# below 2^−FLOOR_BITS (about 10^−1,260,000) a value is 0 to every comparison a claim needs: the truths are
# rationals and 60-digit floats whose own digits end far above it. exp(−1e20) is 2^(−1.4e20): its exact
# fraction would not fit in memory (4.6 GB and minutes before this floor)
FLOOR_BITS = 1 << 22


def places_phrase(decimals: int) -> str:
    return {0: "a whole number", 1: "1 decimal"}.get(decimals, f"{decimals} decimals")
