"""The LaTeX printer, number formatting and escaping, checked against hand-written expectations."""

from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from sympy.printing.latex import LatexPrinter
from hypothesis import given, settings
from hypothesis import strategies as st

from derive.model.plain import plain
from derive.model.registry import ReLU, Sigmoid, Softplus
from derive.numeric.rounding import number
from derive.text.escape import escape_latex, escape_markdown, escape_xml
from derive import solve
from derive.text import escape, printer
from derive.text.chains import LINE, row_pieces
from derive.text.document import Document, View, build
from derive.text.model import Equation
from derive.text.printer import Printer, joined_width, tex, width

z, w, x = sp.symbols("z_h1 w1 x1", real=True)
NAMES = {z: "z_{h_{1}}", w: "w_{1}", x: "x_{1}"}


# -- the printer -----------------------------------------------------------------------------

@pytest.mark.parametrize("expr, expected", [
    (Sigmoid(z), r"\sigma\left(z_{h_{1}}\right)"),
    (ReLU(z), r"\operatorname{ReLU}\left(z_{h_{1}}\right)"),
    (Softplus(z), r"\operatorname{softplus}\left(z_{h_{1}}\right)"),
    (sp.tanh(z), r"\tanh\left(z_{h_{1}}\right)"),
    (sp.Heaviside(z, 0), r"\mathbf{1}\left[z_{h_{1}} > 0\right]"),   # ReLU' with H(0) = 0
    (sp.log(x), r"\ln{\left(x_{1} \right)}"),
    (Sigmoid(z) * (1 - Sigmoid(z)), r"\left(1 - \sigma\left(z_{h_{1}}\right)\right) \sigma\left(z_{h_{1}}\right)"),
    (w * x, r"w_{1} x_{1}"),
])
def test_printer_uses_our_names_and_functions(expr, expected):
    assert tex(expr, NAMES) == expected


def test_numbers_replace_symbols_and_products_get_a_dot():
    values = {w: "0.11", x: "2"}
    assert tex(w * x, values, numbers=True) == r"0.11 \cdot 2"


def test_keep_order_prints_a_sum_as_built():
    b = sp.Symbol("b1")
    with sp.evaluate(False):
        expr = sp.Add(sp.Mul(w, x), b)
    assert tex(expr, {**NAMES, b: "b_{1}"}, keep_order=True) == r"w_{1} x_{1} + b_{1}"


def test_matrix_symbols_transpose_and_hadamard():
    W = sp.MatrixSymbol("W2", 1, 2)
    D = sp.MatrixSymbol("D1", 2, 1)
    d = sp.MatrixSymbol("d2", 1, 1)
    names = {W: "W^{(2)}", D: r"\sigma'\left(Z^{(1)}\right)", d: r"\Delta^{(2)}"}
    expr = sp.HadamardProduct(W.T * d, D)
    # the matrix product is bracketed inside ⊙: (Wᵀ Δ) ⊙ σ′(Z), as in Nielsen's (BP2); the layer and
    # the transpose share one superscript, W^{(2)T}, as textbooks write it
    assert tex(expr, names) == (r"\left(W^{(2)\mathsf{T}} \Delta^{(2)}\right) \odot "
                                r"\sigma'\left(Z^{(1)}\right)")


def test_hadamard_brackets_a_matrix_sum_but_not_a_symbol():
    A, Y, D = (sp.MatrixSymbol(n, 2, 3) for n in ("A2", "Y", "D2"))
    names = {A: "A^{(2)}", Y: "Y", D: r"\sigma'\left(Z^{(2)}\right)"}
    expr = sp.HadamardProduct(sp.MatAdd(A, -Y, evaluate=False), D, evaluate=False)
    assert tex(expr, names) == r"\left(A^{(2)} - Y\right) \odot \sigma'\left(Z^{(2)}\right)"
    assert tex(sp.HadamardProduct(A, D), names) == r"A^{(2)} \odot \sigma'\left(Z^{(2)}\right)"


def test_hadamard_power_of_a_superscripted_matrix_braces_its_base():
    # A^{(2)}^{∘−1} is a double superscript, which LaTeX rejects (the bce and cross-entropy matrix forms)
    A = sp.MatrixSymbol("A2", 2, 3)
    assert tex(sp.HadamardPower(A, -1), {A: "A^{(2)}"}) == r"\left(A^{(2)}\right)^{\circ\, -1}"
    X = sp.MatrixSymbol("X", 2, 3)
    assert tex(sp.HadamardPower(X, 2), {X: "X"}) == r"X^{\circ\, 2}"


def test_keep_order_keeps_products_but_prints_inner_sums_as_usual():
    a, w, delta = sp.IndexedBase("a"), sp.IndexedBase("w"), sp.IndexedBase("delta")
    y, k, L, i = sp.symbols("y k L i")
    names = {a.label: "a", w.label: "w", delta.label: r"\delta"}
    # the product in reading order; a_L − y, k + 1 and L − 1 as one writes them by hand
    expr = sp.Mul(a[L] - y, w[k + 1], delta[k + 1], a[k - 1], evaluate=False)
    assert tex(expr, names, keep_order=True) == r"\left({a}_{L} - y\right) {w}_{k + 1} {\delta}_{k + 1} {a}_{k - 1}"
    assert tex(sp.Product(w[i + 1], (i, k, L - 1)), names, keep_order=True) == r"\prod_{i=k}^{L - 1} {w}_{i + 1}"


def test_derivative_prints_as_a_partial_fraction():
    E = sp.Symbol("E")
    assert tex(sp.Derivative(E, w), NAMES) == r"\frac{\partial E}{\partial w_{1}}"


# -- numbers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, text, exact", [
    (sp.Rational(-809, 1000), "-0.809", True),             # the first seed's Δ
    (sp.Rational(654481, 2000000), "0.3272405", True),     # 7 digits: exact decimals up to precision + 2
    (sp.Rational(69753, 400000), "0.1743825", True),       # the first seed's updated w5
    (sp.Rational(1, 3), "0.333333", False),
    (sp.Rational(2, 3), "0.666667", False),
    (sp.Rational(1, 8), "0.125", True),
    (sp.Integer(5), "5", True),
    (sp.Integer(0), "0", True),
    (sp.Rational(123456789, 1000), "123457", False),       # 9 significant digits > 8: rounded
    (sp.Rational(1, 10 ** 9), r"1 \times 10^{-9}", True),
    (sp.Rational(-1, 3 * 10 ** 6), r"-3.33333 \times 10^{-7}", False),
    (sp.Float("0.59326999510377", 60), "0.593270", False),  # σ(0.3775), Mazur's h1: six significant digits
    (0.1, "0.100000", False),                                # a float stands for its binary value: rounded
])
def test_number_shows_exact_short_decimals_and_rounds_the_rest(value, text, exact):
    shown = number(value)
    assert (shown.tex, shown.exact) == (text, exact)
    assert shown.relation == ("=" if exact else r"\approx")


def test_rounding_is_half_away_from_zero_at_any_precision():
    assert number(sp.Rational(25, 10), 1, inexact=True).tex == "3"
    assert number(sp.Rational(-25, 10), 1, inexact=True).tex == "-3"
    assert number(sp.Rational(25, 10), 1).tex == "2.5"                # exact and short: shown in full
    assert number(sp.Rational(125, 10 ** 7), 2, inexact=True).tex == r"1.3 \times 10^{-5}"
    assert number(sp.Rational(99995, 100000), 4, inexact=True).tex == "1.000"     # carries into the next digit; its zeros are significant
    assert number(sp.Rational(654481, 2000000), 3).tex == "0.327"


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2 ** 200), st.integers(4001, 9000), st.booleans(), st.integers(1, 30))
def test_values_far_beyond_doubles_round_like_their_exact_fractions(mantissa, exponent, small, n):
    """Past 2^±4000 rounding runs in mpmath (the exact fraction has thousands of digits); the digits are
    those of the exact fraction, here computed with Python's Fraction alone."""
    exponent = -exponent if small else exponent
    with mpmath.workprec(256):          # the mantissa's 200 bits exactly
        value = sp.Float(mpmath.mpf((mantissa, exponent)), 80)
    a = Fraction(mantissa) * Fraction(2) ** exponent
    e = len(str(a.numerator)) - len(str(a.denominator))     # an independent ⌊log10 a⌋ (without the digit limit)
    e += -1 if Fraction(10) ** e > a else 1 if Fraction(10) ** (e + 1) <= a else 0
    e += -1 if Fraction(10) ** e > a else 0
    m = int(a / Fraction(10) ** (e - n + 1) + Fraction(1, 2))
    if m == 10 ** n:
        m, e = 10 ** (n - 1), e + 1
    digits = str(m)
    mantissa_text = digits[0] + ("." + digits[1:] if n > 1 else "")
    assert number(value, n).plain == f"{mantissa_text}e{e}"


def test_huge_and_tiny_values_print_quickly_and_whole():
    """A 60-digit float of 10^−300000 (a saturated step at a learning rate of 10⁷) is one number, not an error."""
    assert number(sp.Float("1e-300000", 60)).plain == "1.00000e-300000"
    assert number(-sp.Float("3.5e123456", 60), 2).plain == "-3.5e123456"
    assert number(sp.Rational(10) ** 5000 + 1, 3).plain == "1.00e5000"


def test_negative_and_scientific_numbers_get_parentheses_inside_formulas():
    assert number(sp.Rational(-1, 2)).factor == r"\left(-0.5\right)"
    assert number(sp.Rational(1, 10 ** 9)).factor == r"\left(1 \times 10^{-9}\right)"
    assert number(sp.Rational(1, 2)).factor == "0.5"


def test_plain_text_of_numbers():
    assert number(sp.Rational(-809, 1000)).plain == "-0.809"
    assert number(Fraction(1, 10 ** 9)).plain == "1e-9"


# -- escaping ------------------------------------------------------------------------------------

def test_latex_escape_turns_every_special_character_into_text():
    assert escape_latex(r"\input{/etc/passwd}") == r"\textbackslash{}input\{/etc/passwd\}"
    assert escape_latex("$x$ & {}_%#~^") == (r"\$x\$ \& \{\}\_\%\#\textasciitilde{}\textasciicircum{}")
    assert escape_latex('a "b" c') == "a ``b'' c"
    assert escape_latex("½ − σ") == r"\ensuremath{\tfrac12} \ensuremath{-} \ensuremath{\sigma}"
    assert escape_latex("中") == r"\texttt{[U+4E2D]}"


def test_latex_escape_leaves_no_command_or_group_open():
    text = escape_latex("\\\\def\\x{}\\catcode`\\{=12 %")
    assert "\\def" not in text and "\\catcode" not in text
    unescaped = text.replace("\\{", "").replace("\\}", "")
    assert unescaped.count("{") == unescaped.count("}")


def test_markdown_escape_neutralises_math_emphasis_html_tables_and_headings():
    assert escape_markdown("# $x$ & *y* _z_ <b> | `c`") == r"\# \$x\$ \& \*y\* \_z\_ \<b\> \| \`c\`"
    assert escape_markdown("  two\n\nparagraphs  ") == "two paragraphs"
    assert escape_markdown("- item") == r"\- item"
    assert escape_markdown("1. first") == r"1\. first"


def test_xml_escape():
    assert escape_xml("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"


def test_a_literal_factor_one_in_an_unevaluated_product_is_not_printed():
    with sp.evaluate(False):
        expr = sp.Mul(w, sp.S.One, x)
    assert tex(expr, NAMES) == r"w_{1} x_{1}"


def test_each_function_prints_under_its_own_name():
    # a softmax layer applies exp to its units: exp stays exp (and e^z), it is not the softmax
    z = sp.Symbol("z")
    assert [plain(f(z)) for f in (sp.exp, Sigmoid, ReLU, Softplus, sp.tanh)] == \
        ["exp(z)", "sigmoid(z)", "relu(z)", "softplus(z)", "tanh(z)"]
    assert tex(sp.exp(z)) == "e^{z}"


# -- how wide a formula prints ---------------------------------------------------------------------

def _measured_whole(latex: str, limit: float = math.inf) -> float:
    """printer.width as it was before it kept each piece's items: the whole text measured token by token."""
    if not printer._MARKUP.search(latex):
        return float(len(latex) - sum(c.isspace() for c in latex))
    return printer._measure(printer._TOKEN.findall(printer._MATRIX.sub(printer._matrix_stand_in, latex)), 0,
                            limit=limit)[0]


def _equations(doc: Document) -> list[Equation]:
    found: list[Equation] = []

    def walk(node: object) -> None:
        if isinstance(node, Equation):
            found.append(node)
        elif dataclasses.is_dataclass(node):
            for field in dataclasses.fields(node):
                walk(getattr(node, field.name))
        elif isinstance(node, tuple):
            for item in node:
                walk(item)
    walk(doc)
    return found


@pytest.mark.parametrize("name", ["sigmoid-451-batch", "softmax-233"])
def test_joined_width_is_the_width_of_the_joined_text_to_the_last_bit(name):
    """Every derivation on one line, and every row cut into pieces anywhere (inside a command, a group, a
    matrix): the same float as the whole text measured at once, with and without a limit."""
    equations = _equations(build(solve(name), view=View(detail="full")))
    rows = [row.tex for eq in equations for row in eq.rows]
    assert rows
    for eq in equations:
        pieces = [eq.lhs, *row_pieces(eq.rows)]
        for limit in (math.inf, LINE):
            assert joined_width(pieces, limit) == _measured_whole("".join(pieces), limit)
    for k, text in enumerate(rows):
        cuts = sorted({(k * 7 + 3 * j) % len(text) for j in range(3)} - {0}) if len(text) > 1 else []
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)])]
        for limit in (math.inf, 12):
            assert joined_width(pieces, limit) == _measured_whole(text, limit), pieces
            assert width(text, limit) == _measured_whole(text, limit)


@pytest.mark.parametrize("rows, cols", [(1, 1), (1, 4), (4, 1), (3, 5)])
def test_a_matrix_of_named_symbols_is_written_as_the_printer_writes_it(rows, cols):
    """named_matrix composes the printer's bmatrix (names, then numbers with a sign); anything else is left to it."""
    W = sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"w{i}{j}"))
    for names in ({s: f"w^{{(1)}}_{{{s.name[1:]}}}" for s in W}, {s: f"-0.{k}5" for k, s in enumerate(W)}):
        assert printer.named_matrix(W, names) == tex(W, names)
        assert printer.named_matrix(W.T, names) == tex(W.T, names)
    slots = sp.Matrix(rows, cols, lambda i, j: sp.Dummy())       # the general section's placeholders
    numbers = {s: f"0.{k}" for k, s in enumerate(slots)}
    assert printer.named_matrix(slots, numbers) == tex(slots, numbers)
    assert printer.named_matrix(W, {}) is None
    assert printer.named_matrix(sp.Matrix([[x, 0]]), {x: "x_{1}"}) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from([chr(i) for i in range(0x20, 0x7f)] + list('\n\t"−αé\u00a0')), max_size=20))
def test_latex_escape_returns_text_it_need_not_change_as_it_is(text):
    """The shortcut for text without a character to write otherwise gives what the character-by-character
    escape gives."""
    parts = re.sub(r"[ \t]*\n\s*\n\s*", "\n\n", text).split('"')
    expected = "".join(("``" if k % 2 else "''") * (k > 0) + "".join(escape._latex_char(c) for c in part)
                       for k, part in enumerate(parts))
    assert escape_latex(text) == expected


@pytest.mark.parametrize("numbers", [False, True])
def test_a_named_symbol_and_a_product_of_them_print_as_the_printer_prints_them(numbers):
    """tex's shortcut for a symbol and for a product of symbols in its own order gives the printer's own text:
    names, numbers (a digit beside a digit gets \\cdot), a name missing from the table left to the printer."""
    a, b, c = sp.symbols("a b c")
    texts = ["w^{(1)}_{11}", r"\delta_{2}", "0.5", "-0.25", "2", "x_{1}", r"\left(-3\right)"]
    for first in texts:
        for second in texts:
            names = {a: first, b: second, c: "7"}
            for expr in (a, sp.Mul(a, b, evaluate=False), sp.Mul(b, a, c, evaluate=False)):
                printer = Printer(numbers=numbers, keep_order=True)
                printer.use(names)
                assert tex(expr, names, numbers=numbers, keep_order=True) == printer.doprint(expr)
    assert tex(sp.Mul(a, b, evaluate=False), {a: "a_{1}"}, keep_order=True) == "a_{1} b"


def test_a_matrix_product_prints_as_sympys_printer_prints_it():
    """_print_MatMul's shortcut (no sign to take out unless the first factor is a negative number) gives the text
    of SymPy's own _print_MatMul, which negates the product to find out."""
    A, B, C = (sp.MatrixSymbol(n, 3, 3) for n in "ABC")
    products = [A * B, A * B.T * C, 2 * A * B, -A * B, sp.Rational(-1, 2) * A * (B + C), sp.Symbol("eta") * A * B,
                A * sp.HadamardProduct(B, C), (A + B) * C, sp.MatMul(A, sp.MatMul(B, C), evaluate=False)]
    for product in products:
        printer = Printer()
        assert printer.doprint(product) == LatexPrinter._print_MatMul(printer, product), product
