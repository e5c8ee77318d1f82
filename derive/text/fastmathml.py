"""latex2mathml's convert() for the printer's small LaTeX, many times faster: the same bytes, or None to fall back."""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

XMLNS = "http://www.w3.org/1998/Math/MathML"
DISPLAYS = ("inline", "block")
HEAD = f'<math xmlns="{XMLNS}" display="inline"><mrow>'
# latex2mathml reads a number followed by one of these as a dimension (2em, 0.5 pt): not ours
UNITS = ("in", "mm", "cm", "pt", "em", "ex", "pc", "bp", "dd", "cc", "sp", "mu")

# One token as latex2mathml's tokenizer cuts it, or something it cuts differently that the parser then refuses
# (a number with a unit, a backslash before a non-letter). Whitespace between tokens is skipped, as there.
_TOKEN = re.compile(rf"""
      [0-9]+(?:\.[0-9]+)?(?:\s*(?:{"|".join(UNITS)}))?   # a number, or a dimension (refused)
    | \\math(?:bf|sf)\{{[a-zA-Z]\}}     # one letter in a math font: one token there, a Unicode letter
    | \\mathbf\{{[0-9]+\}}              # a bold number (the 1 of a vector of ones)
    | \\operatorname\{{[a-zA-Z]+\}}     # one token there too
    | \\(?:begin|end)\{{bmatrix\}}       # a matrix of numbers
    | \\[a-zA-Z]+                       # a command
    | \\[^a-zA-Z]                       # an escaped character: \\, and the refused \\\\, \\{{, …
    | \S                                # any other character
""", re.VERBOSE)

# the single tokens latex2mathml turns into one element that does not depend on its neighbours, as it writes them
# (tests.test_mathml checks every one against it, alone and between others)
_CHARACTERS = {
    "+": "<mo>&#x0002B;</mo>", "-": "<mo>&#x02212;</mo>", "=": "<mo>&#x0003D;</mo>",
    "(": '<mo stretchy="false">&#x00028;</mo>', ")": '<mo stretchy="false">&#x00029;</mo>',
    "[": '<mo stretchy="false">[</mo>', "]": '<mo stretchy="false">]</mo>', "|": '<mo stretchy="false">&#x0007C;</mo>',
    ",": "<mo>&#x0002C;</mo>", "/": "<mo>&#x0002F;</mo>", "<": "<mo>&#x0003C;</mo>", ">": "<mo>&#x0003E;</mo>",
}
_OPERATORS = {      # commands written as <mo> of their code point
    "\\cdot": "000B7", "\\times": "000D7", "\\partial": "02202", "\\approx": "02248", "\\odot": "02299",
    "\\circ": "02218", "\\leftarrow": "02190", "\\to": "02192", "\\nabla": "02207", "\\dots": "02026",
    "\\cdots": "022EF", "\\top": "022A4", "\\simeq": "02243", "\\infty": "0221E", "\\in": "02208",
    "\\le": "02264", "\\leq": "02264", "\\ge": "02265", "\\geq": "02265", "\\ne": "02260", "\\neq": "02260",
}
_IDENTIFIERS = {    # commands written as <mi> of their code point: Greek letters
    "\\alpha": "003B1", "\\beta": "003B2", "\\gamma": "003B3", "\\delta": "003B4", "\\epsilon": "003F5",
    "\\varepsilon": "003B5", "\\zeta": "003B6", "\\eta": "003B7", "\\theta": "003B8", "\\vartheta": "003D1",
    "\\iota": "003B9", "\\kappa": "003BA", "\\lambda": "003BB", "\\mu": "003BC", "\\nu": "003BD", "\\xi": "003BE",
    "\\pi": "003C0", "\\rho": "003C1", "\\sigma": "003C3", "\\tau": "003C4", "\\upsilon": "003C5",
    "\\phi": "003D5", "\\varphi": "003C6", "\\chi": "003C7", "\\psi": "003C8", "\\omega": "003C9",
    "\\Gamma": "00393", "\\Delta": "00394", "\\Theta": "00398", "\\Lambda": "0039B", "\\Xi": "0039E",
    "\\Pi": "003A0", "\\Sigma": "003A3", "\\Upsilon": "003A5", "\\Phi": "003A6", "\\Psi": "003A8",
    "\\Omega": "003A9",
}
_FUNCTIONS = ("\\tanh", "\\ln", "\\exp", "\\log")       # <mi> of their name
_SPACES = {"\\,": "0.167em", "\\:": "0.222em", "\\;": "0.278em", "\\quad": "1em", "\\qquad": "2em"}
# Mathematical Bold and Sans-Serif letters: the code points of A and of a (no holes in these two alphabets)
_FONTS = {"\\mathbf": (0x1D400, 0x1D41A), "\\mathsf": (0x1D5A0, 0x1D5BA)}
_BIG = {"\\bigl": "1.2em", "\\bigr": "1.2em", "\\Bigl": "1.623em", "\\Bigr": "1.623em"}
_BIG_DELIMITERS = ("(", ")", "[", "]")
_FENCES = {"(": "&#x00028;", ")": "&#x00029;", "[": "[", "]": "]", "|": "&#x0007C;"}    # after \left, \right
_PRIME = "<mi>&#x02032;</mi>"
MATRIX = "\\begin{bmatrix}"
DIGITS = "0123456789"


def _font_letters() -> dict[str, str]:
    letters = {}
    for command, (upper, lower) in _FONTS.items():
        for i in range(26):
            letters[f"{command}{{{chr(65 + i)}}}"] = f"<mi>&#x{upper + i:05X};</mi>"
            letters[f"{command}{{{chr(97 + i)}}}"] = f"<mi>&#x{lower + i:05X};</mi>"
    del letters["\\mathsf{E}"]        # latex2mathml's table has it as U+22FF (Z notation's bag membership)
    return letters


def _leaves() -> dict[str, str]:
    """Every single token of the subset that is one element whatever surrounds it."""
    leaves = {c: f"<mi>{c}</mi>" for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    leaves.update(_CHARACTERS)
    leaves.update({c: f"<mo>&#x{code};</mo>" for c, code in _OPERATORS.items()})
    leaves.update({c: f"<mi>&#x{code};</mi>" for c, code in _IDENTIFIERS.items()})
    leaves.update({c: f"<mi>{c[1:]}</mi>" for c in _FUNCTIONS})
    leaves.update({c: f'<mspace width="{width}" />' for c, width in _SPACES.items()})
    leaves.update(_font_letters())
    return leaves


LEAVES = _leaves()


class Unsupported(Exception):
    """Outside the subset: the formula goes to latex2mathml."""


# what a node is to a sub- or superscript after it, as latex2mathml's walker tells them apart
ATOM, SUB, SUP, PRIMED, UNDER, DONE = range(6)


class Item(NamedTuple):
    """One node of a row, written; a script keeps its base and script to become <msubsup> with a second one."""

    kind: int
    xml: str
    base: str = ""
    script: str = ""


class Parser:
    """The subset's grammar over the token list; any token or order outside it raises Unsupported."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def take(self) -> str:
        if self.i >= len(self.tokens):
            raise Unsupported
        self.i += 1
        return self.tokens[self.i - 1]

    def group(self) -> str:
        """A braced argument (latex2mathml's BRACES node) as its <mrow>; an argument without braces is refused."""
        if self.take() != "{":
            raise Unsupported
        return _mrow(self.row("}"))

    def row(self, closer: str | None) -> str:
        """The nodes up to ``closer`` (consumed), or to the end at the top (closer None)."""
        items: list[Item] = []
        tokens, end = self.tokens, len(self.tokens)
        while self.i < end:
            token = tokens[self.i]
            self.i += 1
            if token == closer:
                return "".join(item.xml for item in items)
            leaf = LEAVES.get(token)
            if leaf is not None:
                items.append(Item(ATOM, leaf))
            else:
                _handler(token)(self, items, token)
        if closer is not None:              # an unclosed { or \left
            raise Unsupported
        return "".join(item.xml for item in items)


Handler = Callable[[Parser, list[Item], str], None]


def _mrow(inner: str) -> str:
    return f"<mrow>{inner}</mrow>" if inner else "<mrow />"


def _refuse(parser: Parser, items: list[Item], token: str) -> None:
    raise Unsupported


def _number(parser: Parser, items: list[Item], token: str) -> None:
    if not token[-1].isdigit():             # a unit after it: a dimension
        raise Unsupported
    items.append(Item(ATOM, f"<mn>{token}</mn>"))


def _braces(parser: Parser, items: list[Item], token: str) -> None:
    items.append(Item(ATOM, _mrow(parser.row("}"))))


def _frac(parser: Parser, items: list[Item], token: str) -> None:
    numerator = parser.group()
    items.append(Item(ATOM, f"<mfrac>{numerator}{parser.group()}</mfrac>"))


def _fence(parser: Parser, form: str) -> str:
    delimiter = _FENCES.get(parser.take())
    if delimiter is None:
        raise Unsupported
    return f'<mo stretchy="true" fence="true" form="{form}">{delimiter}</mo>'


def _left(parser: Parser, items: list[Item], token: str) -> None:
    opening = _fence(parser, "prefix")
    inner = parser.row("\\right")
    items.append(Item(ATOM, f"<mrow>{opening}{inner}{_fence(parser, 'postfix')}</mrow>"))


def _big(parser: Parser, items: list[Item], token: str) -> None:
    delimiter = parser.take()
    if delimiter not in _BIG_DELIMITERS:
        raise Unsupported
    size = _BIG[token]
    items.append(Item(ATOM, f'<mo stretchy="true" fence="true" minsize="{size}" maxsize="{size}">{delimiter}</mo>'))


def _bold_number(parser: Parser, items: list[Item], token: str) -> None:
    items.append(Item(ATOM, f'<mrow><mn mathvariant="bold">{token[8:-1]}</mn></mrow>'))


def _operatorname(parser: Parser, items: list[Item], token: str) -> None:
    items.append(Item(ATOM, f"<mo>{token[14:-1]}</mo>"))


def _underbrace(parser: Parser, items: list[Item], token: str) -> None:
    items.append(Item(UNDER, f"<munder>{parser.group()}<mo>&#x23DF;</mo></munder>"))


def _matrix(parser: Parser, items: list[Item], token: str) -> None:
    """A bmatrix of numbers, each maybe negative: latex2mathml's brackets and table, three siblings of the row.

    Anything but a number in a cell is refused, and so is an empty cell (latex2mathml drops a row ending in one).
    """
    if token != MATRIX:
        raise Unsupported
    rows: list[str] = []
    cells: list[str] = []
    cell: list[str] = []
    while (token := parser.take()) != "\\end{bmatrix}":
        if token in ("&", "\\\\"):
            cells.append(_cell(cell))
            cell = []
            if token != "&":
                rows.append("<mtr>" + "".join(cells) + "</mtr>")
                cells = []
        else:
            cell.append(token)
    cells.append(_cell(cell))
    rows.append("<mtr>" + "".join(cells) + "</mtr>")
    items.append(Item(DONE, "<mo>&#x0005B;</mo><mtable>" + "".join(rows) + "</mtable><mo>&#x0005D;</mo>"))


def _cell(tokens: list[str]) -> str:
    """One number of a matrix, maybe with its minus sign, as latex2mathml's <mtd>."""
    sign = tokens[:-1] == ["-"]
    if not (tokens[-1:] and tokens[-1][0] in DIGITS and tokens[-1][-1] in DIGITS and (sign or len(tokens) == 1)):
        raise Unsupported
    return "<mtd>" + ("<mo>&#x02212;</mo>" if sign else "") + f"<mn>{tokens[-1]}</mn></mtd>"


def _previous(items: list[Item]) -> Item:
    if not items:                           # a script without a base
        raise Unsupported
    return items[-1]


def _subscript(parser: Parser, items: list[Item], token: str) -> None:
    script, base = parser.group(), _previous(items)
    if base.kind == ATOM:
        items[-1] = Item(SUB, f"<msub>{base.xml}{script}</msub>", base.xml, script)
    elif base.kind in (SUP, PRIMED):
        items[-1] = Item(DONE, f"<msubsup>{base.base}{script}{base.script}</msubsup>")
    elif base.kind == UNDER:                # \underbrace{…}_{label}
        items[-1] = Item(DONE, f"<munder>{base.xml}{script}</munder>")
    else:                                   # a double subscript, or a third script
        raise Unsupported


def _superscript(parser: Parser, items: list[Item], token: str) -> None:
    script, base = parser.group(), _previous(items)
    if base.kind == ATOM:
        items[-1] = Item(SUP, f"<msup>{base.xml}{script}</msup>", base.xml, script)
    elif base.kind == SUB:
        items[-1] = Item(DONE, f"<msubsup>{base.base}{base.script}{script}</msubsup>")
    else:
        raise Unsupported


def _prime(parser: Parser, items: list[Item], token: str) -> None:
    base = _previous(items)
    if base.kind == ATOM:
        items[-1] = Item(PRIMED, f"<msup>{base.xml}{_PRIME}</msup>", base.xml, _PRIME)
    elif base.kind == SUB:
        items[-1] = Item(DONE, f"<msubsup>{base.base}{base.script}{_PRIME}</msubsup>")
    else:                                   # two primes, or a prime after a superscript
        raise Unsupported


# the tokens that are not leaves; \\right only ends a \\left, } only a {
_STRUCTURES: dict[str, Handler] = {
    "{": _braces, "_": _subscript, "^": _superscript, "'": _prime,
    "\\frac": _frac, "\\left": _left, "\\underbrace": _underbrace, **{big: _big for big in _BIG},
}
_BRACED: dict[str, Handler] = {"\\mathbf": _bold_number, "\\operatorname": _operatorname,     # one token with its {…}
                               "\\begin": _matrix}


def _handler(token: str) -> Handler:
    """What a token that is no leaf does: a number by its first digit, \\mathbf{12} by its name, others whole."""
    if token[0] in DIGITS:
        return _number
    name, brace, _ = token.partition("{")
    if brace and len(name) > 1:
        return _BRACED.get(name, _refuse)
    return _STRUCTURES.get(token, _refuse)


def fast_convert(latex: str, display: str = "inline") -> str | None:
    """latex2mathml.converter.convert(latex, display=display), or None where the formula is outside the subset.

    >>> fast_convert("x_{1}")[len(HEAD):]
    '<msub><mi>x</mi><mrow><mn>1</mn></mrow></msub></mrow></math>'
    >>> fast_convert("\\\\sqrt{2}") is None
    True
    """
    tokens = _TOKEN.findall(latex)
    if not tokens or display not in DISPLAYS:       # no token at all: latex2mathml's own error
        return None
    try:
        body = Parser(tokens).row(None)
    except Unsupported:
        return None
    return f'<math xmlns="{XMLNS}" display="{display}"><mrow>{body}</mrow></math>'
