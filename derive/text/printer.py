"""The one LaTeX printer: formulas in the derivation's notation, SymPy's LaTeX printer with our names and functions."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Mapping, Sequence

import sympy as sp
from sympy import Basic, Expr
from sympy.printing.latex import LatexPrinter, _between_two_numbers_p
from sympy.printing.precedence import PRECEDENCE

from derive.model.registry import function_entry


_LAYER_SUPERSCRIPT = re.compile(r"([^^]+)\^\{(\([^{}]*\))\}")     # a name with its layer on top: A^{(2)}


class Printer(LatexPrinter):
    """SymPy's LaTeX printer with our names and functions.

    ``names`` maps symbols (and matrix symbols) to their LaTeX; in a formula with numbers
    substituted it maps them to the numbers instead, and products are written with ``\\cdot``.

    >>> from derive.model.registry import Sigmoid
    >>> x = sp.Symbol("x1")
    >>> Printer({x: "x_{1}"}).doprint(Sigmoid(x))
    '\\\\sigma\\\\left(x_{1}\\\\right)'
    """

    printmethod = "_derive_latex"

    def __init__(self, names: Mapping[Basic, str] | None = None, *, numbers: bool = False,
                 keep_order: bool = False):
        names = dict(names or {})
        self._keep_order, self._top = keep_order, None
        # undefined functions (f′, diag) are named like symbols: by their class, in the same table
        self._functions: Mapping[object, str] = names
        super().__init__({
            "symbol_names": names,
            "ln_notation": True,
            "mul_symbol": "dot" if numbers else None,
            "order": "none" if keep_order else None,
            "mat_delim": "",
            "mat_str": "bmatrix",
        })

    def use(self, names: Mapping[Basic, str] | None) -> None:
        """Print with these names from now on. The one mapping serves both lookups (a class is never equal to
        a symbol), so switching costs nothing: a document prints thousands of formulas with large tables."""
        names = names or {}
        self._functions = names
        self._settings["symbol_names"] = names

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
        if all(isinstance(a, sp.Symbol) for a in e.args):
            return self._product_of_names(e)
        # an unevaluated product may carry a literal factor 1 (f' of a linear layer): never print "· 1"
        ones = [a for a in e.args if a == 1]
        if ones and len(e.args) > len(ones):
            rest = [a for a in e.args if a != 1]
            return self._print(rest[0] if len(rest) == 1 else sp.Mul(*rest, evaluate=False))
        return super()._print_Mul(e)

    def _product_of_names(self, e: sp.Mul) -> str:
        """A product of symbols (δ a, w x, or their numbers) as SymPy's _print_Mul writes it, without its tests for
        a sign, a fraction and brackets, which such a product never needs: they cost a fifth of a document."""
        return self.product([self._print(term) for term in
                             (e.as_ordered_factors() if self.order not in ("old", "none") else e.args)])

    def product(self, texts: Sequence[str]) -> str:
        """Printed factors joined as SymPy's _print_Mul joins them: a space, or \\cdot between two numbers (always
        \\cdot with ``numbers``)."""
        text = last = ""
        for term_tex in texts:
            if _between_two_numbers_p[0].search(last) and _between_two_numbers_p[1].match(term_tex):
                text += self._settings["mul_symbol_latex_numbers"]
            elif text:
                text += self._settings["mul_symbol_latex"]
            text, last = text + term_tex, term_tex
        return text

    def _print_MatMul(self, e):
        first = e.args[0]
        if first.is_Number and first.is_extended_negative:
            return super()._print_MatMul(e)
        # SymPy's _print_MatMul asks could_extract_minus_sign, which negates and evaluates the whole product first
        # (a DiagMatrix asks SymPy's assumptions): most of the general section's time. Its answer is False unless
        # the first factor is a negative number, and SymPy then writes the factors as here, at a product's
        # precedence (precedence_traditional would ask could_extract_minus_sign again, for the same False)
        return " ".join(self._print(a) if isinstance(a, sp.Mul) and not isinstance(a, sp.MatMul)
                        else self.parenthesize(a, PRECEDENCE["Mul"], False) for a in e.args)

    def _print_Heaviside(self, e, exp=None):
        # ReLU' as an indicator: 1 where z > 0, else 0 (H(0) = 0, the contract's choice)
        z = self._print(e.args[0])
        h0 = e.args[1] if len(e.args) > 1 else None
        relation = r"\geq" if h0 == 1 else ">"
        text = rf"\mathbf{{1}}\left[{z} {relation} 0\right]"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"

    def _print_Function(self, e, exp=None):
        entry = function_entry(type(e))
        if entry is not None:                   # σ(z), tanh(z), ReLU(z), softplus(z): the registry's name
            return self._call(entry.latex, e, exp)
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
        layer = _LAYER_SUPERSCRIPT.fullmatch(base) if simple else None
        if layer:           # W^{(l)} transposed is W^{(l)T}, not (W^{(l)})^T
            return rf"{layer[1]}^{{{layer[2]}\mathsf{{T}}}}"
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
    # a named symbol, or a product of them in its own order (w a, δ a, their numbers), as the printer writes it
    # (_print_Symbol gives the name, _print_Mul joins the names), without SymPy's dispatch: a forward pass prints
    # two such a weight
    if names and type(expr) is sp.Symbol and expr in names:
        return names[expr]
    if names and keep_order and type(expr) is sp.Mul and all(type(a) is sp.Symbol and a in names for a in expr.args):
        return printer.product([names[a] for a in expr.args])
    printer.use(names)
    return printer.doprint(expr)


_printers: dict[tuple[bool, bool], Printer] = {}     # building a printer costs more than printing


_NAMED = (sp.Symbol, sp.Dummy)     # printed by LatexPrinter._print_Symbol: the name it is given


def named_matrix(M: sp.MatrixBase, names: Mapping[Basic, str]) -> str | None:
    """``tex(M, names)`` for a matrix whose every entry is a plain symbol with a name (a weight matrix, its
    numbers), written as the printer writes it (bmatrix, no delimiters); None for any other matrix. The setup
    and the update print a wide network's matrices a dozen times, the printer an entry at a time.

    >>> w, x = sp.symbols("w x")
    >>> named_matrix(sp.Matrix([[w, x]]), {w: "0.5", x: "-1"}) == tex(sp.Matrix([[w, x]]), {w: "0.5", x: "-1"})
    True
    """
    rows = M.tolist()
    if not rows or not all(type(entry) in _NAMED and entry in names for row in rows for entry in row):
        return None
    return r"\begin{bmatrix}" + r"\\".join(" & ".join(names[entry] for entry in row) for row in rows) + r"\end{bmatrix}"


# -- how wide a formula prints -------------------------------------------------------------------

_ZERO_WIDTH = {r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\displaystyle", r"\,", r"\!",
               r"\mathrm", r"\operatorname", r"\mathbf", r"\boldsymbol", r"\text", r"\limits"}
_WIDE = {r"\qquad": 2.0, r"\quad": 1.0, r"\sum": 1.5, r"\prod": 1.5, r"\leftarrow": 1.5, r"\approx": 1.2}
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}_^]|[^\\{}_^]")


def width(latex: str, limit: float = math.inf) -> float:
    """Roughly how many characters wide ``latex`` prints (a fraction as its wider line, a sub- or superscript
    at two thirds, ``\\left``/``\\right`` as nothing): enough to tell whether a formula fits on one line.
    ``limit``: measured only until the width passes it (whether a formula fits needs no more).

    >>> width(r"\\frac{a + b}{c} = x_{1}")
    6.166666666666667
    >>> width(r"\\begin{bmatrix}1 & 2\\\\3 & 4\\end{bmatrix}")
    5.0
    """
    if not _MARKUP.search(latex):      # plain characters (a number in a matrix's cell): one each, a space none
        return float(len(latex) - sum(c.isspace() for c in latex))
    items = _items(latex)
    if items is None:
        return _measure(_TOKEN.findall(_MATRIX.sub(_matrix_stand_in, latex)), 0, limit=limit)[0]
    return _added(items, limit)


def joined_width(pieces: Sequence[str], limit: float = math.inf) -> float:
    """``width("".join(pieces), limit)``, from each piece's items as width measured them once: a derivation's rows
    are measured alone, on a line with others and beside their left-hand side, a sum's terms one more at a time.
    The items are added in the order width adds them, so the float is the same; where a piece does not close
    (an open brace, a script at its end, a command its neighbour would lengthen) the whole is measured.

    >>> joined_width([r"\\frac{a + b}{c}", " = ", "x_{1}"]) == width(r"\\frac{a + b}{c} = x_{1}")
    True
    """
    pieces = [piece for piece in pieces if piece]        # a neighbour is the next piece with text
    whole = "".join(pieces)
    if not _MARKUP.search(whole):
        return float(len(whole) - sum(c.isspace() for c in whole))
    total = 0.0
    for k, piece in enumerate(pieces):
        own = _items(piece)
        if own is None or (k and _joins(pieces[k - 1], piece)):
            return width(whole, limit)
        for part in own:
            total += part
            if total > limit:       # the pieces after it are not measured (unless one changes how this one ends)
                return total if k + 1 == len(pieces) or not _joins(piece, pieces[k + 1]) else width(whole, limit)
    return total


def _added(items: Sequence[float], limit: float) -> float:
    """The items' widths added one by one from the left, as _measure adds them, until the sum passes ``limit``."""
    total = 0.0
    for part in items:
        total += part
        if total > limit:
            return total
    return total


_END = "\x01"          # a token after a piece's own: an item that reads it reaches past the piece's end
_OPEN_COMMAND = re.compile(r"(?<!\\)(?:\\\\)*\\([A-Za-z]*)\Z")       # a command a following letter would continue


@lru_cache(maxsize=1 << 16)         # a document measures its rows again and again (16-16-16-16: 7,600 times)
def _items(latex: str) -> tuple[float, ...] | None:
    """The widths of ``latex``'s top-level items, in order (their sum is its width); None where an item reaches
    past its end, a brace closes that it did not open, or a matrix is left open."""
    plain = _MATRIX.sub(_matrix_stand_in, latex)
    if r"\begin" in plain or r"\end" in plain:      # a matrix left open (or nested), which text after it may close
        return None
    tokens = _TOKEN.findall(plain) + [_END]
    end, i, items = len(tokens) - 1, 0, []
    while i < end:
        token = tokens[i]
        if token == "}":
            return None
        if token in _STRUCTURE:
            part, i = _item(tokens, i, 1.0)
        else:           # _item's last lines, without a call: most tokens are a character or a command
            part, i = 0.0 if token in _ZERO_WIDTH or token.isspace() else _WIDE.get(token, 1.0), i + 1
        items.append(part)
    return tuple(items) if i == end else None


def _joins(before: str, after: str) -> bool:
    """Whether ``after`` would change how the end of ``before`` is read: a command's name continued by a letter,
    a lone backslash escaping a character, a script that \\underbrace takes as its label."""
    command = _OPEN_COMMAND.search(before)
    # a matrix is measured as the letters that stand in for it (M…M), which a command's name would continue
    if command is not None and (not command[1] or after[:1].isalpha() or after.startswith("\\begin{")):
        return True
    return after[:1] in ("_", "^")


_MARKUP = re.compile(r"[\\{}_^]")


_MATRIX = re.compile(r"\\begin\{([bp]?matrix)\}((?:(?!\\begin\{).)*?)\\end\{\1\}", re.S)    # innermost first


def _matrix_stand_in(match: re.Match) -> str:
    """A matrix as wide as its widest row and its brackets, in characters a width measure counts as such."""
    rows = match.group(2).split(r"\\")
    widest = max(sum(width(cell) for cell in row.split("&")) + row.count("&") + 1 for row in rows)
    return "M" * round(widest + 1)


def _measure(tokens: list[str], i: int, scale: float = 1.0, limit: float = math.inf) -> tuple[float, int]:
    """The width of tokens[i:] up to the closing brace of the group they are in, and where that group ends
    (or the width so far, once it passes ``limit``)."""
    total = 0.0
    while i < len(tokens):
        token = tokens[i]
        if token == "}":
            return total, i + 1
        if token in _STRUCTURE:
            part, i = _item(tokens, i, scale)
        else:           # _item's last lines, without a call: most tokens are a character or a command
            part, i = 0.0 if token in _ZERO_WIDTH or token.isspace() else _WIDE.get(token, 1.0) * scale, i + 1
        total += part
        if total > limit:
            return total, i
    return total, i


_STRUCTURE = frozenset({"{", "_", "^", r"\frac", r"\dfrac", r"\tfrac", r"\underbrace"})    # _item's items of items


def _item(tokens: list[str], i: int, scale: float) -> tuple[float, int]:
    """The width of the one item at tokens[i] (a group, a fraction, a script, a command, a character)."""
    token = tokens[i]
    if token == "{":
        return _measure(tokens, i + 1, scale)
    if token in ("_", "^"):
        return _item(tokens, i + 1, scale * 2 / 3) if i + 1 < len(tokens) else (0.0, i + 1)
    if token in (r"\frac", r"\dfrac", r"\tfrac"):
        top, i = _item(tokens, i + 1, scale)
        bottom, i = _item(tokens, i, scale) if i < len(tokens) else (0.0, i)
        return max(top, bottom) + scale / 2, i
    if token == r"\underbrace":         # the label below takes no width of its own
        inside, i = _item(tokens, i + 1, scale)
        if i < len(tokens) and tokens[i] == "_":
            _, i = _item(tokens, i + 1, scale)
        return inside, i
    if token in _ZERO_WIDTH or token.isspace():
        return 0.0, i + 1
    return _WIDE.get(token, 1.0) * scale, i + 1
