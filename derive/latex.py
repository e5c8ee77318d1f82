"""The one LaTeX printer: formulas in the derivation's notation, numbers at a precision, escaped text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping

import sympy as sp
from sympy import Basic, Expr
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .activations import Sigmoid  # noqa: F401  (used by the doctests)
from .errors import RenderError

DEFAULT_PRECISION = 6
EXTRA_EXACT_DIGITS = 2      # an exact decimal of up to precision + 2 significant digits is shown in full
FIXED_RANGE = (-4, 7)       # decimal exponents written in fixed notation; others as m × 10^e


class Printer(LatexPrinter):
    """SymPy's LaTeX printer with our names and functions.

    ``names`` maps symbols (and matrix symbols) to their LaTeX; in a formula with numbers
    substituted it maps them to the numbers instead, and products are written with ``\\cdot``.

    >>> x = sp.Symbol("x1")
    >>> Printer({x: "x_{1}"}).doprint(Sigmoid(x))
    '\\\\sigma\\\\left(x_{1}\\\\right)'
    """

    printmethod = "_derive_latex"

    def __init__(self, names: Mapping[Basic, str] | None = None, *, numbers: bool = False,
                 keep_order: bool = False):
        names = dict(names or {})
        self._keep_order, self._top = keep_order, None
        # undefined functions (f′, diag) are named like symbols: by their class
        self._functions = {k: v for k, v in names.items() if isinstance(k, type)}
        super().__init__({
            "symbol_names": {k: v for k, v in names.items() if not isinstance(k, type)},
            "ln_notation": True,
            "mul_symbol": "dot" if numbers else None,
            "order": "none" if keep_order else None,
            "mat_delim": "",
            "mat_str": "bmatrix",
        })

    def use(self, names: Mapping[Basic, str] | None) -> None:
        """Print with these names from now on."""
        names = names or {}
        self._functions = {k: v for k, v in names.items() if isinstance(k, type)}
        self._settings["symbol_names"] = {k: v for k, v in names.items() if not isinstance(k, type)}

    def _call(self, name: str, e: Expr, exp: str | None) -> str:
        text = rf"{name}\left({self._print(e.args[0])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"

    def doprint(self, expr):
        self._top = expr
        return super().doprint(expr)

    def _print_Add(self, e, order=None):
        if not self._keep_order or e is self._top:
            return super()._print_Add(e, order)
        # keep_order is for products (∂E/∂a_L first, a_{k−1} last) and for the sum a caller built
        # (the formula itself: Σ_j over the outputs, w·x + b); a sum inside reads best in the usual
        # order, subtracted terms last: a_L − y, k + 1, L − 1 (not −y + a_L, 1 + k, −1 + L)
        terms = sorted(e.as_ordered_terms(), key=lambda t: t.could_extract_minus_sign())
        text = ""
        for i, term in enumerate(terms):
            if i and term.could_extract_minus_sign():
                text, term = text + " - ", -term
            elif i:
                text += " + "
            term_tex = self._print(term)
            text += rf"\left({term_tex}\right)" if self._needs_add_brackets(term) else term_tex
        return text

    def _print_Mul(self, e):
        # an unevaluated product may carry a literal factor 1 (f' of a linear layer): never print "· 1"
        ones = [a for a in e.args if a == 1]
        if ones and len(e.args) > len(ones):
            rest = [a for a in e.args if a != 1]
            return self._print(rest[0] if len(rest) == 1 else sp.Mul(*rest, evaluate=False))
        return super()._print_Mul(e)

    def _print_Sigmoid(self, e, exp=None):
        return self._call(r"\sigma", e, exp)

    def _print_ReLU(self, e, exp=None):
        return self._call(r"\operatorname{ReLU}", e, exp)

    def _print_Softplus(self, e, exp=None):
        return self._call(r"\operatorname{softplus}", e, exp)

    def _print_tanh(self, e, exp=None):
        return self._call(r"\tanh", e, exp)

    def _print_Heaviside(self, e, exp=None):
        # ReLU' as an indicator: 1 where z > 0, else 0 (H(0) = 0, the contract's choice)
        z = self._print(e.args[0])
        h0 = e.args[1] if len(e.args) > 1 else None
        relation = r"\geq" if h0 == 1 else ">"
        text = rf"\mathbf{{1}}\left[{z} {relation} 0\right]"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"

    def _print_Function(self, e, exp=None):
        name = self._functions.get(type(e))
        if name is None:
            return super()._print_Function(e, exp)
        args = ", ".join(self._print(a) for a in e.args)
        text = rf"{name}\left({args}\right)"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"

    def _print_Derivative(self, e):
        # ∂E/∂w: the documents only differentiate once, with respect to one quantity
        if len(e.variable_count) != 1 or e.variable_count[0][1] != 1:
            return super()._print_Derivative(e)
        return rf"\frac{{\partial {self._print(e.expr)}}}{{\partial {self._print(e.variables[0])}}}"

    def _print_transpose(self, e, exp=None):
        return self._print_Transpose(e)

    def _print_DiagMatrix(self, e):
        return rf"\operatorname{{diag}}\left({self._print(e.args[0])}\right)"

    def _print_HadamardPower(self, e):
        base = self._print(e.base)
        if not isinstance(e.base, sp.MatrixSymbol) or "^" in base:
            base = rf"\left({base}\right)"
        return rf"{base}^{{\circ\, {self._print(e.exp)}}}"

    def _print_Transpose(self, e):
        arg = e.args[0]
        base = self._print(arg)
        simple = isinstance(arg, (sp.MatrixSymbol, sp.Symbol)) or (isinstance(arg, sp.Indexed) and len(base) < 20)
        if not simple or "^" in base:
            base = rf"\left({base}\right)"
        return rf"{base}^{{\mathsf{{T}}}}"

    def _print_HadamardProduct(self, e):
        # a matrix product or sum inside ⊙ is bracketed: (W^T Δ) ⊙ σ′(Z), never W^T Δ ⊙ σ′(Z)
        return r" \odot ".join(rf"\left({self._print(a)}\right)" if isinstance(a, (sp.MatMul, sp.MatAdd))
                               else self.parenthesize(a, PRECEDENCE["Mul"], strict=True) for a in e.args)


def tex(expr: Basic, names: Mapping[Basic, str] | None = None, *, numbers: bool = False,
        keep_order: bool = False) -> str:
    """``expr`` in LaTeX with the given names (or numbers) for its symbols.

    >>> tex(sp.Symbol("w1") * sp.Symbol("x1"), {sp.Symbol("w1"): "0.11", sp.Symbol("x1"): "2"}, numbers=True)
    '0.11 \\\\cdot 2'
    """
    printer = _printers.get((numbers, keep_order))
    if printer is None:
        printer = _printers[numbers, keep_order] = Printer(numbers=numbers, keep_order=keep_order)
    printer.use(names)
    return printer.doprint(expr)


_printers: dict[tuple[bool, bool], Printer] = {}     # building a printer costs more than printing


# -- plain text ----------------------------------------------------------------------------

class PlainPrinter(StrPrinter):
    """Formulas in the claim syntax of `derive check`, so an expected answer can be pasted back.

    ``names`` maps symbols to their plain text (or to numbers); others print by their own name.

    >>> z, o, y = sp.symbols("z_h1 o y")
    >>> PlainPrinter().doprint(Sigmoid(z) * (o - y))
    '(o - y)*sigmoid(z_h1)'
    """

    def __init__(self, names: Mapping[Basic, str] | None = None):
        super().__init__()
        self.names = dict(names or {})

    def _print_Symbol(self, e):
        return self.names.get(e, e.name)

    def _print_Sigmoid(self, e):
        return f"sigmoid({self._print(e.args[0])})"

    def _print_ReLU(self, e):
        return f"relu({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"softplus({self._print(e.args[0])})"

    def _print_Heaviside(self, e):
        return f"relu'({self._print(e.args[0])})"          # ReLU's derivative, 0 at 0 like Heaviside(z, 0)

    def _print_Piecewise(self, e):
        # the leaky ReLU (z if z > 0, else c·z) and its derivative (1 if z > 0, else c), c the spec's slope
        u = self._positive_part(e)
        if u is not None:
            (first, _), (second, _) = e.args
            c = sp.cancel(second / u) if u != 0 else None
            if c is not None and c.is_number and sp.expand(first - u) == 0:
                return f"{'leaky_relu' if c != 0 else 'relu'}({self._print(first)})"
            if first == 1 and second.is_number:
                return f"{'leaky_relu' if second != 0 else 'relu'}'({self._print(u)})"
        return self._print_Function(e)

    @staticmethod
    def _positive_part(e: sp.Piecewise) -> Expr | None:
        """u for Piecewise((…, u > 0), (…, True)), however SymPy wrote u > 0 (w·x > −1, z < 0); else None."""
        if len(e.args) != 2 or e.args[1].cond is not sp.true:
            return None
        cond = e.args[0].cond
        if isinstance(cond, sp.StrictGreaterThan):
            return sp.expand(cond.lhs - cond.rhs)
        if isinstance(cond, sp.StrictLessThan):
            return sp.expand(cond.rhs - cond.lhs)
        return None

    def _print_SampleSum(self, e):
        return f"sum({self._print(e.args[0])})"            # derive.claims.SampleSum: a sum over the samples

    def _print_Exp1(self, e):
        return "exp(1)"                                     # the claim syntax has exp, not the constant E

    def _print_Pow(self, e, rational=False):
        # (o - y)**2, not (-o + y)**2: an even power of a negated base is the same power
        base, exp = e.args
        if exp.is_Integer and exp % 2 == 0 and base.could_extract_minus_sign():
            e = sp.Pow(-base, exp, evaluate=False)
        return super()._print_Pow(e, rational)


def plain(expr: Basic, names: Mapping[Basic, str] | None = None) -> str:
    """``expr`` as plain text in the claim syntax of `derive check`: ``sigmoid(z_h1)``, ``(o - y)*h1``."""
    return PlainPrinter(names).doprint(expr)


# -- numbers -------------------------------------------------------------------------------

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
    if isinstance(value, Fraction):
        return value
    if isinstance(value, (int, float)):
        return Fraction(value)
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


# -- user text -----------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%", "#": r"\#",
    "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "\u00a0": "~",
}

# Characters pdflatex's utf8 input cannot typeset in the default OT1 encoding, written out.
_UNICODE = {
    "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}", "•": r"\ensuremath{\bullet}",
    "−": r"\ensuremath{-}", "×": r"\ensuremath{\times}", "·": r"\ensuremath{\cdot}", "÷": r"\ensuremath{\div}",
    "±": r"\ensuremath{\pm}", "≈": r"\ensuremath{\approx}", "≠": r"\ensuremath{\neq}", "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}", "→": r"\ensuremath{\rightarrow}", "←": r"\ensuremath{\leftarrow}",
    "⇒": r"\ensuremath{\Rightarrow}", "∂": r"\ensuremath{\partial}", "∑": r"\ensuremath{\sum}",
    "∏": r"\ensuremath{\prod}", "√": r"\ensuremath{\surd}", "∞": r"\ensuremath{\infty}", "∈": r"\ensuremath{\in}",
    "⊙": r"\ensuremath{\odot}", "∘": r"\ensuremath{\circ}", "′": r"\ensuremath{'}", "°": r"\ensuremath{^\circ}",
    "½": r"\ensuremath{\tfrac12}", "¼": r"\ensuremath{\tfrac14}", "¾": r"\ensuremath{\tfrac34}",
    "²": r"\ensuremath{^2}", "³": r"\ensuremath{^3}", "¹": r"\ensuremath{^1}", "µ": r"\ensuremath{\mu}",
    "ⁿ": r"\ensuremath{^n}", "₁": r"\ensuremath{_1}", "₂": r"\ensuremath{_2}", "ᵀ": r"\ensuremath{^{\mathsf{T}}}",
    "§": r"\S{}", "¶": r"\P{}", "©": "(c)", "€": "EUR", "£": "GBP",
    "«": r"\ensuremath{\ll}", "»": r"\ensuremath{\gg}", "¡": r"!`", "¿": r"?`", "\t": " ",
}
_GREEK = dict(zip(
    "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ",
    r"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon "
    r"phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split()))
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0327": "c",
            "\u030c": "v", "\u0304": "="}


def _latex_char(c: str) -> str:
    if c in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[c]
    if " " <= c <= "~" or c == "\n":
        return c
    if c in _UNICODE:
        return _UNICODE[c]
    if c in _GREEK:
        return rf"\ensuremath{{\{_GREEK[c]}}}"
    import unicodedata

    parts = unicodedata.normalize("NFD", c)
    if len(parts) == 2 and " " <= parts[0] <= "~" and parts[0].isalpha() and parts[1] in _ACCENTS:
        return rf"\{_ACCENTS[parts[1]]}{{{parts[0]}}}"      # é → \'{e}: works in every font encoding
    special = {"ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "ø": r"\o{}", "Ø": r"\O{}", "å": r"\aa{}",
               "Å": r"\AA{}", "œ": r"\oe{}", "Œ": r"\OE{}", "ı": r"\i{}", "ł": r"\l{}", "Ł": r"\L{}"}
    if c in special:
        return special[c]
    if unicodedata.category(c).startswith(("C", "Z")):
        return " "
    return rf"\texttt{{[U+{ord(c):04X}]}}"                  # anything else is named, never passed to TeX


def escape_latex(text: str) -> str:
    """User text as LaTeX text: every character prints as itself, nothing runs.

    >>> escape_latex(r"\\input{/etc/passwd} $x$ & 50%")
    '\\\\textbackslash{}input\\\\{/etc/passwd\\\\} \\\\$x\\\\$ \\\\& 50\\\\%'
    """
    text = re.sub(r"[ \t]*\n\s*\n\s*", "\n\n", text)     # keep paragraphs, drop stray blank lines
    out, opened = [], False
    for c in text:
        if c == '"':                                        # "…" as TeX quotes: `` first, '' second
            out.append("''" if opened else "``")
            opened = not opened
        else:
            out.append(_latex_char(c))
    return "".join(out)


_MD_SPECIAL = set("\\`*_{}[]<>#|$~&!")


def escape_markdown(text: str) -> str:
    """User text as Markdown text: no emphasis, math, HTML, links, headings or tables start in it.

    Whitespace runs (newlines too) become one space, so the text stays one paragraph; the
    characters Markdown, GitHub math and HTML give meaning to are backslash-escaped.

    >>> escape_markdown("$x$ & *y* # <b>")
    '\\\\$x\\\\$ \\\\& \\\\*y\\\\* \\\\# \\\\<b\\\\>'
    """
    out = markdown_chars(" ".join(text.split()))
    if out[:1] in ("-", "+", "=", ".") or re.match(r"\d+[.)]", out):
        out = "\\" + out if not out[:1].isdigit() else re.sub(r"^(\d+)([.)])", r"\1\\\2", out)
    return out


def markdown_chars(text: str) -> str:
    """Backslash-escape the characters Markdown, GitHub math and HTML give meaning to; nothing else."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def escape_xml(text: str) -> str:
    """Text for XML/SVG/HTML content and attribute values."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))

