"""The one rounding: a value rounded half away from zero to significant digits, and shown as text and LaTeX."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import sympy as sp
from mpmath.ctx_mp_python import _mpf as AnyMpf      # the mpf of every mpmath context
from sympy import Basic

from derive.errors import RenderError

DEFAULT_PRECISION = 6
EXTRA_EXACT_DIGITS = 2      # an exact decimal of up to precision + 2 significant digits is shown in full
FIXED_RANGE = (-4, 7)       # decimal exponents written in fixed notation; others as m × 10^e


@dataclass(frozen=True)
class Number:
    """A value as shown: its LaTeX, its plain text, and whether the text is the exact value."""

    tex: str
    plain: str
    exact: bool

    @property
    def relation(self) -> str:
        """``=`` before an exact value, ``\\approx`` before a rounded one."""
        return "=" if self.exact else r"\approx"

    @property
    def factor(self) -> str:
        """The LaTeX to use inside a product or sum: negative and scientific values in parentheses."""
        if self.tex.startswith("-") or r"\times" in self.tex:
            return rf"\left({self.tex}\right)"
        return self.tex


def _fraction(value) -> Fraction:
    """The exact value of an int, float, Fraction, SymPy number or mpmath mpf."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (int, float)):
        return Fraction(value)
    if isinstance(value, AnyMpf):
        sign, m, e, _ = value._mpf_                                     # exact binary value; man_exp drops the sign
        return (-1) ** sign * Fraction(int(m)) * Fraction(2) ** int(e)
    value = sp.sympify(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    if value.is_Float:
        m, e = value._mpf_[1] * (-1) ** value._mpf_[0], value._mpf_[2]   # exact binary value
        return Fraction(m) * Fraction(2) ** e
    raise TypeError(f"not a number: {value!r}")


def _exponent(a: Fraction) -> int:
    """⌊log10 a⌋ for a > 0, exactly."""
    e = len(str(a.numerator)) - len(str(a.denominator))
    while Fraction(10) ** e > a:
        e -= 1
    while Fraction(10) ** (e + 1) <= a:
        e += 1
    return e


def _decimal_digits(a: Fraction) -> int | None:
    """Significant digits of a's exact decimal expansion, or None if it does not terminate."""
    q = a.denominator
    twos = fives = 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return None
    places = max(twos, fives)
    digits = str(a.numerator * 10 ** places // a.denominator).rstrip("0")
    return max(len(digits), 1)


def _digits(a: Fraction, n: int) -> tuple[int, int]:
    """a rounded half away from zero to n significant digits: (mantissa m, exponent e), a ≈ m·10^(e−n+1)."""
    e = _exponent(a)
    m = a * Fraction(10) ** (n - 1 - e)
    rounded = int(m + Fraction(1, 2))       # a > 0, so this is half away from zero
    if rounded == 10 ** n:
        rounded, e = 10 ** (n - 1), e + 1
    return rounded, e


def round_significant(value, n: int) -> sp.Rational:
    """``value`` rounded half away from zero to n significant digits, as the exact decimal that is shown.

    >>> round_significant(sp.Rational(2, 3), 3), round_significant(sp.Float(-0.0012345), 2)
    (667/1000, -3/2500)
    """
    a = _fraction(value)
    if a == 0:
        return sp.S.Zero
    m, e = _digits(abs(a), n)
    shown = Fraction(m) * Fraction(10) ** (e - n + 1)
    return sp.Rational(-shown if a < 0 else shown)


def round_decimals(value, places: int) -> sp.Rational:
    """``value`` rounded half away from zero to ``places`` decimal places, as the exact decimal that is shown.

    >>> from mpmath import mpf
    >>> round_decimals(sp.Rational(1, 8), 2), round_decimals(-0.125, 2), round_decimals(mpf("-0.125"), 2)
    (13/100, -13/100, -13/100)
    """
    a = _fraction(value)
    shown = Fraction(_units(a, places)) / Fraction(10) ** places
    return sp.Rational(-shown if a < 0 else shown)


def _units(a: Fraction, places: int, truncate: bool = False) -> int:
    """|a| in units of the last of ``places`` decimals, rounded half away from zero (or cut toward zero)."""
    scaled = abs(a) * Fraction(10) ** places
    return int(scaled) if truncate else int(scaled + Fraction(1, 2))


def fixed(value, places: int, truncate: bool = False) -> str:
    """``value`` rounded half away from zero (or cut toward zero) to ``places`` decimals, with all of them.

    >>> fixed(sp.Rational(81, 1000), 4), fixed(-0.125, 2), fixed(-0.001, 2), fixed(2.5, 0), fixed(0.129, 2, truncate=True)
    ('0.0810', '-0.13', '0.00', '3', '0.12')
    """
    a = _fraction(value)
    units = _units(a, places, truncate)
    digits = str(units).rjust(places + 1, "0")
    sign = "-" if a < 0 and units else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def _layout(m: int, e: int, n: int, zeros: bool = False) -> tuple[str, str]:
    """Mantissa digits m (n of them) with decimal exponent e: fixed or scientific.

    Trailing zeros are dropped from an exact value (0.5) and kept in a rounded one (≈ 0.503000):
    they are significant digits there.
    """
    digits = str(m).rjust(n, "0")
    strip = (lambda t: t) if zeros else (lambda t: t.rstrip("0"))
    if FIXED_RANGE[0] <= e < FIXED_RANGE[1]:
        if e >= 0:
            whole, frac = digits[:e + 1].ljust(e + 1, "0"), digits[e + 1:]
        else:
            whole, frac = "0", "0" * (-e - 1) + digits
        frac = strip(frac)
        text = f"{whole}.{frac}" if frac else whole
        return text, text
    head, tail = digits[0], strip(digits[1:])
    mantissa = f"{head}.{tail}" if tail else head
    return rf"{mantissa} \times 10^{{{e}}}", f"{mantissa}e{e}"


def check_precision(precision: int) -> int:
    """The --precision option: 1 to 30 significant digits."""
    if not 1 <= precision <= 30:
        raise RenderError(f"--precision {precision}: expected a whole number from 1 to 30")
    return precision


def number(value, precision: int = DEFAULT_PRECISION, *, inexact: bool = False) -> Number:
    """``value`` shown with ``precision`` significant digits (exact when it is a short decimal).

    A rational whose decimal expansion ends within precision + 2 significant digits is shown in
    full; anything else (σ(z), a 60-digit float, or ``inexact=True``) is rounded half away from
    zero and marked as rounded.

    >>> number(sp.Rational(-809, 1000)).tex, number(sp.Rational(1, 3)).tex
    ('-0.809', '0.333333')
    >>> number(sp.Rational(1, 3)).relation
    '\\\\approx'
    """
    if precision < 1:
        raise ValueError("precision must be at least 1")
    a = _fraction(value)
    if a == 0:
        return Number("0", "0", not inexact)
    sign = "-" if a < 0 else ""
    a = abs(a)
    rational = isinstance(value, (int, Fraction)) or (isinstance(value, Basic) and value.is_Rational)
    digits = _decimal_digits(a) if rational and not inexact else None
    if digits is not None and digits <= precision + EXTRA_EXACT_DIGITS:
        m, e = _digits(a, digits)
        exact, n = True, digits
    else:
        m, e = _digits(a, precision)
        exact, n = False, precision
    text, plain = _layout(m, e, n, zeros=not exact)
    return Number(sign + text, sign + plain, exact)
