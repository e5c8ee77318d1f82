"""The claim tokenizer: the whitelist of characters and LaTeX commands a claim may use, cut into tokens.

Claims are untrusted text. Only the characters and commands listed here pass; everything else is a
ClaimError naming its column, so what is checked is exactly what a reader sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from derive.errors import ClaimError
from derive.model.registry import latex_commands

MAX_LENGTH = 5000          # characters of one claim (a fully expanded 2-2-2 gradient is ~900)
MAX_TOKENS = 1500          # tokens of one claim
MAX_DIGITS = 40            # digits of one number literal
HADAMARD = ".*"                                             # the entrywise product: .*, ⊙, \odot, \circ
TRANSPOSE = ".T"                                            # A1.T; also ^T, ^\top, ' and ᵀ in a matrix claim


# -- characters ----------------------------------------------------------------------------

# The only non-ASCII characters accepted, each with the ASCII it stands for. Everything else
# outside printable ASCII (homoglyphs, zero-width or control characters, full-width letters)
# is rejected with its code point, so what is checked is exactly what a reader sees.
UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2010": "-", "\u00b7": "*", "\u22c5": "*", "\u2219": "*",
    "\u00d7": "*", "\u2217": "*", "\u00f7": "/", "\u2032": "'",
    "\u2019": "'", "\u02b9": "'", "\u03c3": "\\sigma ", "\u03b7": "\\eta ", "\u03b1": "\\alpha ",
    "\u03b4": "\\delta ", "\u03a3": "\\sum ", "\u2211": "\\sum ", "\u2202": "\\partial ",
    "\u2248": "=", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u00bd": "(1/2)",
    "$": " ",                  # $…$ and $$…$$ around a claim copied from LaTeX or Markdown
    # matrices: Δ⁽²⁾, the transpose Aᵀ (and ⊤), the entrywise products ⊙ and ∘
    "\u0394": "\\Delta ", "\u1d40": "^T", "\u22a4": "^T", "\u2299": "\\odot ", "\u2218": "\\circ ",
}
# superscript digits and signs: a run of them is one exponent, 10⁻⁴ = 10^{-4} (x² alone stays x^2)
SUPERSCRIPTS = {"\u2070": "0", "\u00b9": "1", "\u00b2": "2", "\u00b3": "3", **{chr(0x2070 + i): str(i) for i in range(4, 10)},
                "\u207b": "-", "\u207a": "+"}
SUBSCRIPT_DIGITS = {chr(0x2080 + i): str(i) for i in range(10)}
ASCII_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\r\n+-*/^()[]{},=_'.\\@;&")

# LaTeX commands: what each one becomes. Wrappers take one {group} of letters as a name.
SPACING = {",", ";", ":", "!", " ", "quad", "qquad", "big", "Big", "bigg", "Bigg", "bigl", "bigr",
           "Bigl", "Bigr", "biggl", "biggr", "displaystyle"}
COMMAND_OPS = {"cdot": "*", "times": "*", "ast": "*", "div": "/", "{": "(", "}": ")", "approx": "=", "simeq": "="}
COMMAND_NAMES = {"exp": "exp", "ln": "ln", "log": "log", "eta": "eta", "alpha": "alpha", "delta": "delta",
                 "sqrt": "sqrt", "sum": "\\sum", **latex_commands()}     # \sigma, \tanh: the activations
WRAPPERS = {"operatorname", "mathrm", "text", "mathit", "mathbf", "boldsymbol", "rm", "mathsf"}
FRACTIONS = {"frac", "dfrac", "tfrac"}
DELIMITERS = {"(": "(", ")": ")", "[": "[", "]": "]", ".": None}


@dataclass(frozen=True)
class Token:
    """One token: its kind (num, name, op, frac, partial, end), its text, its 1-based columns."""

    kind: str
    text: str
    column: int
    end: int


def fail(column: int, message: str) -> ClaimError:
    return ClaimError(f"column {column}: {message}")


def _show(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})" if not ch.isascii() or not ch.isprintable() else repr(ch)


def _without_full_stop(text: str) -> str:
    """A claim written as a sentence (dE/dw5 = 0.0822.): its final stop is no part of it."""
    stripped = text.rstrip()
    if len(stripped) > 1 and stripped[-1] in ".;" and not stripped[-2].isspace() and stripped[-2] != ".":
        return stripped[:-1] + " " * (len(text) - len(stripped) + 1)
    return text


def _superscript_runs(text: str) -> list[tuple[int, str | None]]:
    """(column, None) for each character, or (column, its ASCII) once for a run of superscripts."""
    out: list[tuple[int, str | None]] = []
    column = 1
    while column <= len(text):
        run = ""
        while column + len(run) <= len(text) and text[column + len(run) - 1] in SUPERSCRIPTS:
            run += SUPERSCRIPTS[text[column + len(run) - 1]]
        out.append((column, run or None))
        column += len(run) or 1
    return out


def _normalize(text: str) -> list[tuple[str, int]]:
    """The claim as ASCII characters, each with the column of the character it came from."""
    out: list[tuple[str, int]] = []
    previous_subscript = False
    text = _without_full_stop(text)
    for column, run in _superscript_runs(text):
        if run is not None:
            out += [(c, column) for c in (f"^{run}" if len(run) == 1 and run.isdigit() else f"^{{{run}}}")]
            previous_subscript = False
            continue
        ch = text[column - 1]
        if ch in SUBSCRIPT_DIGITS:
            out += [(c, column) for c in ("" if previous_subscript else "_") + SUBSCRIPT_DIGITS[ch]]
            previous_subscript = True
            continue
        previous_subscript = False
        if ch in UNICODE:
            out += [(c, column) for c in UNICODE[ch]]
        elif ch in ASCII_OK:
            out.append((ch, column))
        else:
            raise fail(column, f"unexpected character {_show(ch)}")
    return out


_SCAN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<comma>\d+,\d+(?:[eE][+-]?\d+)?)
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>leaky_relu(?![A-Za-z0-9_])|[A-Za-z]+\d*)
  | (?P<cmd>\\(?:[A-Za-z]+|[,;:! {}\\]))
  | (?P<op>\*\*|\.\*|\.\^|\./|\.T(?![A-Za-z0-9_])|[-+*/^()\[\]{},=_'@;&])
""", re.VERBOSE)


def _kind(m: re.Match[str]) -> str:
    """The name of the _SCAN group that matched (every alternative is a named group)."""
    if m.lastgroup is None:                             # pragma: no cover - the scanner's regex
        raise AssertionError(f"unnamed match {m.group()!r}")
    return m.lastgroup


_BRACKET = re.compile(r"\s*(\\?[()\[\].{}|])")             # after \left or \right
_WRAPPED = re.compile(r"\s*\{\s*([A-Za-z]+\d*|\d+)\s*\}")    # after \operatorname and the other wrappers

# the token each remaining command stands for: (kind, text)
_COMMAND_TOKENS: dict[str, tuple[str, str]] = {
    **{command: ("op", op) for command, op in COMMAND_OPS.items()},
    **{command: ("name", name) for command, name in COMMAND_NAMES.items()},
    **{command: ("frac", "\\frac") for command in FRACTIONS},
    "partial": ("partial", "\\partial"),
    "prime": ("op", "'"),
    # matrices: \Delta^{(2)}, A^\top, \odot and \circ (entrywise), a bmatrix's row break \\
    "Delta": ("name", "Delta"), "top": ("name", "T"), "intercal": ("name", "T"),
    "odot": ("op", HADAMARD), "circ": ("op", HADAMARD), "\\": ("op", ";"),
}
# matrix environments: \begin{bmatrix} a & b \\ c & d \end{bmatrix} reads as [a, b; c, d]
MATRIX_ENVIRONMENTS = {"bmatrix", "pmatrix", "matrix", "Bmatrix"}
_ENVIRONMENT = re.compile(r"\s*\{\s*([A-Za-z]+)\s*\}")
_LAYER_DIGITS = re.compile(r" ?(\d+)")


@dataclass
class _Scanner:
    """The normalized claim cut into tokens: its ASCII text, each character's column, the tokens so far."""

    text: str
    columns: list[int]
    pos: int = 0
    tokens: list[Token] = field(default_factory=list)

    def emit(self, token: Token, counted: bool = True) -> None:
        """Append a token; past MAX_TOKENS a ClaimError (a \\left/\\right bracket is counted by the next one)."""
        self.tokens.append(token)
        if counted and len(self.tokens) > MAX_TOKENS:
            raise ClaimError(f"the claim has too many symbols (more than {MAX_TOKENS} tokens)")

    def step(self) -> None:
        """Scan the next lexeme at ``pos`` and emit what it stands for (spacing stands for nothing)."""
        m = _SCAN.match(self.text, self.pos)
        if m is None:
            raise fail(self.columns[self.pos], f"unexpected character {self.text[self.pos]!r}")
        col, end = self.columns[self.pos], self.columns[m.end() - 1] + 1
        self.pos = m.end()
        _LEXEMES[_kind(m)](self, m.group(), col, end)

    def space(self, value: str, col: int, end: int) -> None:
        """Whitespace separates tokens and is dropped."""

    def number(self, value: str, col: int, end: int) -> None:
        digits = sum(c.isdigit() for c in value)
        if digits > MAX_DIGITS:
            raise fail(col, f"number too long ({digits} digits; at most {MAX_DIGITS})")
        self.emit(Token("num", value, col, end))

    def comma(self, value: str, col: int, end: int) -> None:
        """0,0822: a decimal comma outside brackets; inside them (max(0,1), w_{1,2}) the comma separates."""
        if self.open_brackets() == 0:
            self.number(value.replace(",", "."), col, end)
            return
        start = self.pos - len(value)
        before, after = value.split(",")
        comma = start + len(before)
        self.number(before, col, self.columns[comma])
        self.op(",", self.columns[comma], self.columns[comma] + 1)
        self.number(after, self.columns[comma + 1], end)

    def open_brackets(self) -> int:
        opened = sum(t.kind == "op" and t.text in "([{" for t in self.tokens)
        return opened - sum(t.kind == "op" and t.text in ")]}" for t in self.tokens)

    def name(self, value: str, col: int, end: int) -> None:
        self.emit(Token("name", value, col, end))

    def op(self, value: str, col: int, end: int) -> None:
        """An operator; ``**`` is ``^``, a bmatrix's ``&`` separates as ``,``, MATLAB's ``./`` is ``/`` (entry by
        entry in a matrix claim; ``@`` is a matrix claim's product)."""
        self.emit(Token("op", {"**": "^", "&": ",", "./": "/"}.get(value, value), col, end))

    def command(self, value: str, col: int, end: int) -> None:
        """A LaTeX command: spacing, a sized bracket, a wrapped name, or the token it stands for."""
        command = value[1:]
        if command in SPACING:
            return
        if command in ("left", "right"):
            self.bracket(command, col)
        elif command in ("begin", "end"):
            self.environment(command, col)
        elif command in WRAPPERS:
            self.wrapped(command, col)
        elif command in _COMMAND_TOKENS:
            kind, text = _COMMAND_TOKENS[command]
            digits = _LAYER_DIGITS.match(self.text, self.pos) if text == "Delta" else None
            if digits:                              # Δ2, \Delta 2: the layer's number belongs to the name
                self.pos = digits.end()
                text, end = text + digits.group(1), self.columns[self.pos - 1] + 1
            self.emit(Token(kind, text, col, end))
        else:
            raise fail(col, f"unknown LaTeX command \\{command}")

    def bracket(self, command: str, col: int) -> None:
        """\\left( … \\right): the bracket itself (\\{ \\} are parentheses; \\left. is none)."""
        m = _BRACKET.match(self.text, self.pos)
        if m is None or m.group(1) in ("|", "\\|"):
            raise fail(col, f"expected a bracket after \\{command}")
        delimiter = m.group(1).lstrip("\\")
        self.pos = m.end()
        if delimiter in "{}":
            delimiter = "(" if delimiter == "{" else ")"
        if delimiter != ".":
            self.emit(Token("op", delimiter, col, self.columns[self.pos - 1] + 1), counted=False)

    def environment(self, command: str, col: int) -> None:
        """\\begin{bmatrix} … \\end{bmatrix}: the brackets of a matrix literal."""
        m = _ENVIRONMENT.match(self.text, self.pos)
        if m is None or m.group(1) not in MATRIX_ENVIRONMENTS:
            raise fail(col, f"expected {{bmatrix}} after \\{command}")
        self.pos = m.end()
        self.emit(Token("op", "[" if command == "begin" else "]", col, self.columns[self.pos - 1] + 1))

    def wrapped(self, command: str, col: int) -> None:
        """\\operatorname{ReLU}, \\mathrm{w}: the letters in the group are a name."""
        m = _WRAPPED.match(self.text, self.pos)
        if m is None:
            raise fail(col, f"expected {{letters}} after \\{command}")
        self.pos = m.end()
        kind = "num" if m.group(1).isdigit() else "name"          # \mathbf{1}: the vector of ones
        self.emit(Token(kind, m.group(1), col, self.columns[self.pos - 1] + 1))


# what each group of _SCAN becomes
_LEXEMES: dict[str, Callable[[_Scanner, str, int, int], None]] = {
    "space": _Scanner.space, "comma": _Scanner.comma, "num": _Scanner.number, "name": _Scanner.name,
    "cmd": _Scanner.command,
    "op": _Scanner.op,
}


def tokenize(text: str) -> list[Token]:
    """Whitelisted tokens of ``text``; a ClaimError at the first character that is not allowed."""
    if len(text) > MAX_LENGTH:
        raise ClaimError(f"the claim is too long ({len(text)} characters; at most {MAX_LENGTH})")
    chars = _normalize(text)
    scanner = _Scanner("".join(c for c, _ in chars), [col for _, col in chars] + [len(text) + 1])
    while scanner.pos < len(scanner.text):
        scanner.step()
    scanner.tokens.append(Token("end", "", len(text) + 1, len(text) + 1))
    return scanner.tokens
