"""The one rounding: a value rounded half away from zero to significant digits, and shown as text and LaTeX."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import mpmath
import sympy as sp
from mpmath.ctx_mp_python import _mpf as AnyMpf  # the mpf of every mpmath context
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
    """The exact value of an int, float, Decimal, Fraction, SymPy number or mpmath mpf."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (int, float, Decimal)):
        return Fraction(value)
    if isinstance(value, AnyMpf):
        sign, m, e, _ = value._mpf_                                     # exact binary value; man_exp drops the sign
        return (-1) ** sign * Fraction(int(m)) * Fraction(2) ** int(e)
    value = sp.sympify(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    if value.is_Float:
        m, e = value._mpf_[1] * (-1) ** value._mpf_[0], value._mpf_[2]   # exact binary value
        return Fraction(int(m) << e) if e >= 0 else Fraction(int(m), 1 << -e)
    raise TypeError(f"not a number: {value!r}")


LOG10_2 = 0.30102999566398120


def _exponent(a: Fraction) -> int:
    """⌊log10 a⌋ for a > 0, exactly.

    Estimated from the bit lengths, not from decimal strings: a 60-digit float far out of the
    range of doubles is an exact fraction of thousands of digits, which Python will not print.
    """
    num, den = a.numerator, a.denominator
    e = int((num.bit_length() - den.bit_length()) * LOG10_2)
    while not _reaches(num, den, e):
        e -= 1
    while _reaches(num, den, e + 1):
        e += 1
    return e


def _reaches(num: int, den: int, e: int) -> bool:
    """10^e ≤ num/den, in integers (a Fraction's every operation reduces by a gcd: the cost of a document's numbers)."""
    return 10 ** e * den <= num if e >= 0 else den <= num * 10 ** -e


def _decimal_digits(a: Fraction) -> int | None:
    """Significant digits of a's exact decimal expansion, or None if it does not terminate."""
    if a == 0:
        return 1
    q = a.denominator
    twos = fives = 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return None
    places = max(twos, fives)
    digits = a.numerator * 10 ** places // a.denominator
    while digits % 10 == 0:
        digits //= 10
    return _exponent(Fraction(abs(digits))) + 1


def _digits(a: Fraction, n: int) -> tuple[int, int]:
    """a rounded half away from zero to n significant digits: (mantissa m, exponent e), a ≈ m·10^(e−n+1)."""
    e = _exponent(a)
    shift = n - 1 - e
    # integers, not Fractions: a value far beyond doubles is a fraction of thousands of digits,
    # and every Fraction operation would reduce it by a gcd
    num, den = a.numerator, a.denominator
    num, den = (num * 10 ** shift, den) if shift >= 0 else (num, den * 10 ** -shift)
    rounded = (2 * num + den) // (2 * den)      # a > 0, so this is half away from zero
    if rounded == 10 ** n:
        rounded, e = 10 ** (n - 1), e + 1
    return rounded, e


FAR = 4000     # binary exponents beyond ±FAR (about 10^±1200): round in mpmath, not in exact fractions


def _far(value) -> tuple[int, int, int] | None:
    """(sign, mantissa, binary exponent) of a nonzero binary float far from 1, else None."""
    if not isinstance(value, (sp.Float, AnyMpf)):
        return None
    sign, man, exp, _ = value._mpf_
    return (sign, int(man), int(exp)) if man and abs(exp) > FAR else None


def _far_digits(man: int, exp: int, n: int) -> tuple[int, int]:
    """man·2^exp rounded to n significant digits like ``_digits``, in mpmath.

    The exact fraction of 10^−300000 has a million digits and every step with it is slow; a
    binary float that far out cannot be a decimal tie (that needs 2^exp to cancel against 10^k),
    so a few guard bits beyond the n digits give the same digits.
    """
    # n digits need about 3.3 n bits; the rest is guard: the mantissa's further bits move the result
    # only within 2^−96 of a tie, which a value this far out cannot be
    with mpmath.workprec(4 * n + 96):
        x = mpmath.mpf((man, exp))
        e = int(mpmath.floor(mpmath.log10(x)))
        m = x * mpmath.power(10, n - 1 - e)
        if m >= 10 ** n:
            e, m = e + 1, m / 10
        elif m < 10 ** (n - 1):
            e, m = e - 1, m * 10
        rounded = int(mpmath.floor(m + mpmath.mpf(1) / 2))
    if rounded == 10 ** n:
        rounded, e = 10 ** (n - 1), e + 1
    return rounded, e


def _significant(value, n: int) -> tuple[bool, int, int] | None:
    """(negative, m, e) of ``value`` rounded half away from zero to n significant digits; None for 0."""
    far = _far(value)
    if far is not None:
        return bool(far[0]), *_far_digits(far[1], far[2], n)
    a = _fraction(value)
    if a == 0:
        return None
    return a < 0, *_digits(abs(a), n)


def round_significant(value, n: int) -> sp.Rational:
    """``value`` rounded half away from zero to n significant digits, as the exact decimal that is shown.

    >>> round_significant(sp.Rational(2, 3), 3), round_significant(sp.Float(-0.0012345), 2)
    (667/1000, -3/2500)
    """
    rounded = _significant(value, n)
    if rounded is None:
        return sp.S.Zero
    negative, m, e = rounded
    shown = Fraction(m) * Fraction(10) ** (e - n + 1)
    return sp.Rational(-shown if negative else shown)


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


def short(value, n: int, fixed_range: tuple[int, int] = FIXED_RANGE) -> str:
    """``value`` rounded half away from zero to n significant digits as plain text, trailing zeros dropped
    (a message's number: "off by 0.00192", "1.5e-7"), fixed within ``fixed_range`` of decimal exponents.

    >>> short(0.125, 2), short(-2.5e-9, 3), short(sp.Rational(2, 3), 4), short(123456789, 3, (-6, 9))
    ('0.13', '-2.5e-9', '0.6667', '123000000')
    """
    rounded = _significant(value, n)
    if rounded is None:
        return "0"
    negative, m, e = rounded
    return ("-" if negative else "") + _layout(m, e, n, fixed_range=fixed_range)[1]


def _layout(m: int, e: int, n: int, zeros: bool = False, fixed_range: tuple[int, int] = FIXED_RANGE
            ) -> tuple[str, str]:
    """Mantissa digits m (n of them) with decimal exponent e: fixed or scientific.

    Trailing zeros are dropped from an exact value (0.5) and kept in a rounded one (≈ 0.503000):
    they are significant digits there.
    """
    digits = str(m).rjust(n, "0")
    strip = (lambda t: t) if zeros else (lambda t: t.rstrip("0"))
    if fixed_range[0] <= e < fixed_range[1]:
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


@dataclass(frozen=True)
class Rounding:
    """How numbers are rounded: to ``n`` significant digits, or with ``decimals`` to n decimal places
    (as hmkcode's tutorial and many exams write 0.12, 0.00877 → 0.01)."""

    n: int
    decimals: bool = False

    def round(self, value) -> sp.Rational:
        """``value`` rounded half away from zero, as the exact decimal that is shown."""
        return round_decimals(value, self.n) if self.decimals else round_significant(value, self.n)

    @property
    def words(self) -> str:
        """"6 significant digits" or "2 decimal places", for a sentence."""
        unit = "decimal place" if self.decimals else "significant digit"
        return f"{self.n} {unit}{'' if self.n == 1 else 's'}"


MAX_DECIMALS = 20


def check_precision(precision: int | Rounding) -> int | Rounding:
    """The --precision option (1 to 30 significant digits) or --decimals (0 to 20 places)."""
    if isinstance(precision, Rounding) and precision.decimals:
        if not 0 <= precision.n <= MAX_DECIMALS:
            raise RenderError(f"--decimals {precision.n}: expected a whole number from 0 to {MAX_DECIMALS}")
        return precision
    n = precision.n if isinstance(precision, Rounding) else precision
    if not 1 <= n <= 30:
        raise RenderError(f"--precision {n}: expected a whole number from 1 to 30")
    return precision


def number(value, precision: int | Rounding = DEFAULT_PRECISION, *, inexact: bool = False) -> Number:
    """``value`` shown with ``precision`` significant digits (exact when it is a short decimal).

    A rational whose decimal expansion ends within precision + 2 significant digits is shown in
    full; anything else (σ(z), a 60-digit float, or ``inexact=True``) is rounded half away from
    zero and marked as rounded.

    >>> number(sp.Rational(-809, 1000)).tex, number(sp.Rational(1, 3)).tex
    ('-0.809', '0.333333')
    >>> number(sp.Rational(1, 3)).relation
    '\\\\approx'
    """
    if isinstance(precision, Rounding):
        if precision.decimals:
            return _places(value, precision.n, inexact)
        precision = precision.n
    if precision < 1:
        raise ValueError("precision must be at least 1")
    rational = isinstance(value, (int, Fraction)) or (isinstance(value, Basic) and value.is_Rational)
    digits = _decimal_digits(abs(_fraction(value))) if rational and not inexact else None
    exact = digits is not None and digits <= precision + EXTRA_EXACT_DIGITS
    n = digits if exact and digits is not None else precision
    rounded = _significant(value, n)
    if rounded is None:
        return Number("0", "0", not inexact)
    negative, m, e = rounded
    text, plain = _layout(m, e, n, zeros=not exact)
    sign = "-" if negative else ""
    return Number(sign + text, sign + plain, exact)


def _places(value, places: int, inexact: bool) -> Number:
    """``value`` rounded to ``places`` decimals, every place written (0.10); a value that is such a decimal
    is exact and written as it is (2, 0.1, 0.05)."""
    a = _fraction(value)
    text = fixed(a, places)
    exact = not inexact and Fraction(_units(a, places)) / Fraction(10) ** places == abs(a)
    if exact and "." in text:
        text = text.rstrip("0").rstrip(".")
    return Number(text, text, exact)
