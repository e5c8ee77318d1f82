r"""The safe claim parser: a recursive-descent parser over whitelisted tokens (check/tokens.py) that builds SymPy.

Claims are untrusted text (typed into a web form by hundreds of students). Nothing here calls
``eval``, ``exec``, ``compile``, ``sympify`` or ``parse_expr``: the tokenizer accepts only the
characters and LaTeX commands it lists, the parser builds SymPy nodes one by one from
those tokens, and every size that could make SymPy or the evaluator slow is bounded first
(length, token count, nesting depth, digits, exponents). Every rejection is a ClaimError whose
message is one line: the column and what was expected.

Names are not resolved here: the parser hands each name it reads (with its subscripts, prime
and sample index) to a ``Vocabulary`` that the checker supplies for one network.

Syntax of a claim ``LHS = RHS`` (``≈`` also separates the sides):

- LHS: ``dE/dNAME`` (any capital letter or Error/Loss/Cost for the loss; also ``∂E/∂w5``,
  ``\frac{\partial E}{\partial w_5}``, ``dE_total/dw5``; ``de/dNAME[k]`` with lower-case e is sample
  k's part, the derivative of its own loss e), ``NAME'`` (after the first update), a
  computed name (``o``, ``h1``, ``z_h1``, ``a1_2``, ``delta_o``, ``E``, ``e``), optionally with a
  sample index ``o[2]`` (samples count from 1).
- RHS: numbers (``0.17``, ``1.7e-2``, ``1.7 \times 10^{-2}``, ``1/3``), names (``w_6``, ``w_{6}``,
  ``z_{h_1}``, ``w^{(2)}_{11}``, ``w5'``, ``o[2]``, ``dE/do``, ``δ_o``), the constants ``N`` (samples)
  and ``eta`` (learning rate), ``+ - * / ^ **``, juxtaposition (``2(o - y)h1``), ``( ) [ ] { }``,
  ``sigmoid σ tanh exp e^x log ln relu max(0, z) leaky_relu LReLU softplus sqrt`` (leaky_relu with the
  network's slope), derivatives ``sigmoid'(z)``, ``leaky_relu'(z)``,
  ``\sigma^{\prime}(z)``, powers of functions ``\tanh^2(z)``, ``\frac{a}{b}``, ``\cdot``,
  ``\times``, ``\left( \right)``, spacing ``\, \; \quad``, ``\operatorname{ReLU}``, and sums over
  the samples ``sum(…)``, ``\sum_n …``, ``\sum_{n=1}^{N} …``, ``Σ …`` in which ``o``, ``o_n`` or ``o[n]`` is
  sample n's.
- As students write: a chain ``A = B = C`` (each link a claim), ``≈``/``\approx`` for ``=``, ``$…$``
  around the claim, a final full stop, a decimal comma outside brackets (``0,0822``), ``\frac12``,
  superscripts (``10⁻⁴``), and ``w_5^+``, ``w5_new``, ``w5^{new}`` for ``w5'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Callable, Protocol

import sympy as sp
from sympy import Expr, Symbol

from derive.check.tokens import MAX_DIGITS, Token, fail, tokenize
from derive.errors import ClaimError
from derive.model.registry import ACTIVATIONS, activation, claim_spellings, max_activation

MAX_DEPTH = 60             # nesting of parentheses, fractions, functions, unary signs, powers
MAX_EXPONENT = 100         # |p| of a constant exponent p/q
# |k| of a literal's e-notation: derive itself prints values down to 1e−4343 (σ′ of a unit at z = 10⁴),
# and a student copies them; 10^5000 as an exact fraction is still cheap
MAX_LITERAL_EXPONENT = 5000
MAX_ROOT = 12              # q of a constant exponent p/q
MAX_MAGNITUDE = 2000       # decimal digits of any exact constant built from powers


class SampleSum(sp.Function):
    """Σₙ over the samples of the batch; the checker evaluates it, SymPy leaves it alone."""

    nargs = 1

    def _eval_derivative(self, s):
        return SampleSum(self.args[0].diff(s))          # Σ is linear: d/ds Σₙ f = Σₙ df/ds


# Functions a claim may call; NAME' is the derivative, NAME^k(x) the k-th power of NAME(x): the
# activations under the registry's spellings (sigma, ReLU, LReLU …), max(0, z), and these of mathematics
MATH_FUNCTIONS: dict[str, Callable[[Expr], Expr]] = {"exp": sp.exp, "log": sp.log, "ln": sp.log, "sqrt": sp.sqrt}
MATH_DERIVATIVES: dict[str, Callable[[Expr], Expr]] = {
    "exp": sp.exp,
    "log": lambda u: 1 / u,
    "sqrt": lambda u: 1 / (2 * sp.sqrt(u)),
}
MAXIMUM = "max"
SPELLED = claim_spellings()
FUNCTIONS = set(MATH_FUNCTIONS) | set(SPELLED) | {MAXIMUM}
CANONICAL = {"ln": "log", **SPELLED}
# the loss in dE/dNAME; lower-case e is one sample's loss (de/dw5[2]: sample 2's part of dE/dw5)
LOSS_WORDS = re.compile(r"^(?:[A-Z](?:total|tot)?|Error|Loss|Cost|error|loss|cost|e)$")

# Runs of tokens the parser looks ahead for: operator texts, and NUMBER for any number literal.
NUMBER = "<number>"
POWERS = (("^", NUMBER), ("^", "{", NUMBER, "}"))            # tanh^2(z), \tanh^{2}(z)
PRIMES = (("^", "'"), ("^", "{", "'", "}"))                  # \sigma^\prime(z), \sigma^{\prime}(z)
LAYER_BRACED = ("^", "{", "(", NUMBER, ")", "}")            # w^{(2)}_{11}
LAYER_BARE = ("^", "(", NUMBER, ")")                        # w^(2)_11: only right before a subscript
SAMPLE_INDEX = ("[", NUMBER, "]")                           # o[2]; o[n] is the sample variable
# an updated value as students write it, for NAME': w_5^+, w_5^{+}, w5_new, w5_{new}, w5^{new}
UPDATED_MARKS = (("^", "{", "+", "}"), ("^", "+"), ("_", "{", "new", "}"), ("_", "new"), ("^", "{", "new", "}"),
                 ("^", "new"))


# -- what the parser hands to the checker ----------------------------------------------------

@dataclass(frozen=True)
class NameRef:
    """A name as written: the plain spellings it may stand for, most likely first.

    ``spellings`` pairs each candidate plain name with a sample index: None when no sample is
    named, 0 for the sample variable n (``o_n``, ``o[n]``), k ≥ 1 for sample k (``o[2]``).
    ``prime`` marks a value after the first update (``w5'``).
    """

    text: str
    spellings: tuple[tuple[str, int | None], ...]
    prime: bool
    column: int


class Vocabulary(Protocol):
    """What a name means in one network; supplied by the checker."""

    def symbol(self, ref: NameRef, in_sum: bool) -> Expr:
        """The expression a name stands for; ClaimError when it names nothing."""

    def derivative(self, loss: str, ref: NameRef, in_sum: bool) -> Expr:
        """The symbol of ∂(loss)/∂(name), e.g. dE/do or dE/dw5; ClaimError when there is none."""

    # optional: ``slope``, the leaky ReLU's slope for z ≤ 0 (leaky_relu(z) in a claim)


@dataclass(frozen=True)
class Lhs:
    """The left-hand side: ``derivative`` (∂loss/∂name) or a plain name (``w5'``, ``o[2]``, ``E``)."""

    kind: str                  # "derivative" | "name" | "local"
    ref: NameRef
    loss: str = ""             # the letter or word standing for the loss, for derivatives
    of: NameRef | None = None  # a local factor's numerator: do1/dz_o1 names o1 here and z_o1 in ref


@dataclass(frozen=True)
class Rhs:
    """The right-hand side as a SymPy expression, with what its literals say about precision.

    ``decimals`` is how many decimals a number claims (None: exact, e.g. an integer or 1/3);
    ``written`` is the shape: "number" (one literal, maybe signed or ×10^k) or "expression".
    """

    expr: Expr
    written: str
    decimals: int | None
    literals: tuple["Literal", ...] = ()    # every number as written, in order
    tracked: Expr | None = None             # expr with each literal a symbol (Literal.symbol), for its rounding


@dataclass(frozen=True)
class Literal:
    """A number as the student wrote it: its value, how many decimals it claims (None: exact), its symbol
    in ``Rhs.tracked``."""

    symbol: Symbol
    value: sp.Rational
    decimals: int | None


@dataclass(frozen=True)
class Claim:
    text: str
    lhs: Lhs
    rhs: Rhs


# -- the parser --------------------------------------------------------------------------------

@dataclass
class _Parser:
    tokens: list[Token]
    words: Vocabulary | None            # None: the left-hand side, or a constant expression
    pos: int = 0
    depth: int = 0
    in_sum: bool = False
    decimals: list[int] = field(default_factory=list)
    track: bool = False                 # each number becomes a Literal's symbol (see Rhs.tracked)
    literals: list[Literal] = field(default_factory=list)

    # navigation
    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.pos + k, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def at(self, text: str, k: int = 0) -> bool:
        token = self.peek(k)
        return token.kind == "op" and token.text == text

    def expect(self, text: str, what: str) -> Token:
        token = self.peek()
        if not self.at(text):
            raise fail(token.column, f"expected {what}; got {_describe(token)}")
        return self.take()

    def vocabulary(self) -> Vocabulary:
        """What names mean; a parser built without a Vocabulary reads numbers and constants only."""
        if self.words is None:
            raise TypeError("a name in an expression parsed without a Vocabulary")
        return self.words

    def ahead(self, pattern: tuple[str, ...]) -> bool:
        """Do the next tokens read ``pattern`` (operator texts, NUMBER for any number)?"""
        return all(self.peek(k).kind == "num" if item == NUMBER else self.at(item, k) for k, item in enumerate(pattern))

    def deeper(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise fail(column, f"nested too deeply (at most {MAX_DEPTH} levels)")

    # grammar: expression := term (('+'|'-') term)*
    def expression(self) -> Expr:
        result = self.term()
        while self.at("+") or self.at("-"):
            sign = self.take().text
            right = self.term()
            result = _checked(result + right if sign == "+" else result - right, self.peek().column)
        return result

    # term := unary (('*'|'/'|juxtaposition) unary)*
    def term(self) -> Expr:
        result = self.unary()
        while True:
            token = self.peek()
            if self.at("*") or self.at("/"):
                self.take()
                right = self.unary()
                result = result * right if token.text == "*" else result / right
            elif self.starts_atom(token):
                if token.kind == "num" and self.tokens[self.pos - 1].kind == "num":
                    raise fail(token.column, f"two numbers in a row: {self.tokens[self.pos - 1].text} {token.text}")
                right = self.unary()
                result = result * right
            else:
                return result
            result = _checked(result, token.column)

    def starts_atom(self, token: Token) -> bool:
        return token.kind in ("num", "name", "frac", "partial") or (token.kind == "op" and token.text in "([{")

    # unary := ('-'|'+') unary | power
    def unary(self) -> Expr:
        token = self.peek()
        self.deeper(token.column)
        try:
            if self.at("-") or self.at("+"):
                self.take()
                operand = self.unary()
                return -operand if token.text == "-" else operand
            return self.power()
        finally:
            self.depth -= 1

    # power := atom ('^' unary)?      (right-associative through unary)
    def power(self) -> Expr:
        base = self.atom()
        if self.at("^"):
            token = self.take()
            exponent = self.exponent()
            return _power(base, exponent, token.column)
        return base

    def exponent(self) -> Expr:
        """What follows ^: a {group}, a single digit run, a name, or a signed unary."""
        if self.at("{"):
            return self.group("{", "}")
        return self.unary()

    def group(self, opening: str, closing: str) -> Expr:
        token = self.expect(opening, f"'{opening}'")
        self.deeper(token.column)
        try:
            inner = self.expression()
        finally:
            self.depth -= 1
        self.expect(closing, f"'{closing}' to close the '{opening}' at column {token.column}")
        return inner

    def atom(self) -> Expr:
        token = self.peek()
        if token.kind == "num":
            self.take()
            return self.number(token)
        if token.kind == "op" and token.text in "([{":
            closing = {"(": ")", "[": "]", "{": "}"}[token.text]
            return self.group(token.text, closing)
        if token.kind == "frac":
            return self.fraction()
        if token.kind == "partial" or (token.kind == "name" and self.is_derivative()):
            loss, ref = self.derivative_ref()
            return self.vocabulary().derivative(loss, ref, self.in_sum)
        if token.kind == "name":
            return self.named()
        raise fail(token.column, f"expected a number, a name or '('; got {_describe(token)}")

    def number(self, token: Token) -> Expr:
        try:
            value = Decimal(token.text)
        except InvalidOperation:                        # pragma: no cover - the scanner's regex
            raise fail(token.column, f"not a number: {token.text!r}") from None
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or abs(exponent) > MAX_LITERAL_EXPONENT + MAX_DIGITS:
            raise fail(token.column, f"number out of range: {token.text} (expected a power of ten of at most "
                                      f"10^±{MAX_LITERAL_EXPONENT})")
        places = _decimals(token.text)
        self.decimals.append(-1 if places is None else places)
        frac = Fraction(value)
        number = sp.Rational(frac.numerator, frac.denominator)
        if not self.track:
            return number
        literal = Literal(Symbol(f"literal{len(self.literals)}", real=True), number, places)
        self.literals.append(literal)
        return literal.symbol

    def fraction(self) -> Expr:
        token = self.take()
        if self.is_derivative_fraction():
            self.pos -= 1
            loss, ref = self.derivative_ref()
            return self.vocabulary().derivative(loss, ref, self.in_sum)
        if self.peek().kind == "num" and re.fullmatch(r"\d\d", self.peek().text):    # \frac12, TeX's ½
            digits = self.take().text
            return _checked(sp.Rational(int(digits[0]), int(digits[1])), token.column)
        numerator = self.group("{", "}")
        denominator = self.group("{", "}")
        return _checked(numerator / denominator, token.column)

    # -- names and functions ------------------------------------------------------------------
    def named(self) -> Expr:
        token = self.peek()
        word = token.text
        if word in FUNCTIONS:
            return self.call()
        if word in ("sum", "\\sum", "Sum"):
            return self.sample_sum()
        if word == "e" and self.at("^", 1):
            self.take()
            caret = self.take()
            return _power(sp.E, self.exponent(), caret.column)
        ref = self.name_ref()
        return self.vocabulary().symbol(ref, self.in_sum)

    def call(self) -> Expr:
        """NAME(x), NAME'(x) or NAME^k(x) for a function NAME."""
        token = self.take()
        name = CANONICAL.get(token.text, token.text)
        power = self.function_power()
        derivative = self.function_prime(name)
        if name == MAXIMUM:
            return self.maximum(token)
        if name == "sqrt" and self.at("["):
            raise fail(self.peek().column, "only square roots are supported")
        argument = self.argument(token)
        return self.raised(_checked(self.apply(name, derivative, argument, token.column), token.column), power)

    def function_power(self) -> Token | None:
        """The k of f^k or f^{k} between a function's name and its argument, consumed; None if none."""
        for pattern in POWERS:
            if self.ahead(pattern):
                power = self.peek(pattern.index(NUMBER))
                self.pos += len(pattern)
                return power
        return None

    def function_prime(self, name: str) -> bool:
        """Whether a prime (f', f^\\prime, f^{\\prime}) follows a function's name, consumed."""
        if self.at("'"):
            self.take()
            if self.at("'"):
                raise fail(self.peek().column, f"only first derivatives are supported: {name}'")
            return True
        for pattern in PRIMES:
            if self.ahead(pattern):
                self.pos += len(pattern)
                return True
        return False

    def argument(self, function: Token) -> Expr:
        """A function's argument, in ( ) or in { }."""
        if not (self.at("(") or self.at("{")):
            raise fail(self.peek().column, f"expected '(' after {function.text}; got {_describe(self.peek())}")
        self.deeper(function.column)
        try:
            return self.group("(", ")") if self.at("(") else self.group("{", "}")
        finally:
            self.depth -= 1

    def apply(self, name: str, derivative: bool, argument: Expr, column: int) -> Expr:
        """The function ``name`` (or its derivative) of ``argument``; an activation with the network's slope."""
        if name in ACTIVATIONS:             # f'(u) is the entry's f'(z, a) at z = u, a = f(u)
            act = activation(name, getattr(self.words, "slope", None))
            return act.df(argument, act.f(argument)) if derivative else act.f(argument)
        if derivative:
            if name not in MATH_DERIVATIVES:
                raise fail(column, f"no derivative known for {name}")
            return MATH_DERIVATIVES[name](argument)
        return MATH_FUNCTIONS[name](argument)

    def raised(self, result: Expr, power: Token | None) -> Expr:
        """f^k(x): the function's value to the power k written between its name and its argument."""
        if power is not None:
            result = _power(result, self.number(power), power.column)
        return result

    def maximum(self, token: Token) -> Expr:
        """max(0, z) is the ReLU; no other maximum is part of a derivation."""
        opening = self.expect("(", "'(' after max")
        self.deeper(opening.column)
        try:
            first = self.expression()
            self.expect(",", "',' in max(0, z)")
            second = self.expression()
        finally:
            self.depth -= 1
        self.expect(")", f"')' to close the '(' at column {opening.column}")
        if first == 0 or second == 0:
            return max_activation().f(second if first == 0 else first)
        raise fail(token.column, "max is only supported as max(0, z), the ReLU")

    def sample_sum(self) -> Expr:
        token = self.take()
        latex = token.text == "\\sum"
        if self.in_sum:
            raise fail(token.column, "a sum over samples inside another sum is not supported")
        # limits such as _{n=1}^{N} or _n only name the sample index: skip them
        while self.at("_") or self.at("^"):
            self.take()
            if self.at("{"):
                self.skip_group()
            else:
                self.take()
        self.in_sum = True
        self.deeper(token.column)
        try:
            if not latex:
                if not self.at("("):
                    raise fail(self.peek().column, f"expected '(' after sum; got {_describe(self.peek())}")
                summand = self.group("(", ")")
            else:
                summand = self.term()          # \sum_n a b c: the product that follows
        finally:
            self.in_sum = False
            self.depth -= 1
        return SampleSum(summand)

    def skip_group(self) -> None:
        opening = self.expect("{", "'{'")
        level = 1
        while level:
            token = self.take()
            if token.kind == "end":
                raise fail(opening.column, "unclosed '{'")
            level += token.text == "{" and token.kind == "op"
            level -= token.text == "}" and token.kind == "op"

    def name_ref(self, strip: str = "") -> NameRef:
        """A name with its subscripts, layer superscript, prime and sample index."""
        token = self.take()
        if token.kind != "name":
            raise fail(token.column, f"expected a name; got {_describe(token)}")
        base = token.text[len(strip):]
        if not base:
            if self.peek().kind != "name":
                raise fail(self.peek().column, f"expected a name; got {_describe(self.peek())}")
            base = self.take().text
        text = [base if strip else token.text]
        layer, subs = self.subscripts(text)
        prime, index = self.marks(text)
        return NameRef("".join(text), _spellings(base, layer, subs, index), prime, token.column)

    def subscripts(self, text: list[str]) -> tuple[str | None, list[str]]:
        """A name's subscripts and its layer superscript (at most one), each also appended to ``text``."""
        layer = None
        subs: list[str] = []
        while True:
            if self.at("_") and not self.new_mark():
                self.take()
                sub = self.subscript()
                subs.append(sub)
                text.append("_" + sub)
            elif layer is None and (superscript := self.layer()) is not None:
                layer = superscript
                text.append(f"^({layer})")
            else:
                return layer, subs

    def layer(self) -> str | None:
        """A layer superscript ^{(2)}, or ^(2) right before a subscript, consumed; None if there is none."""
        for pattern, then in ((LAYER_BRACED, ()), (LAYER_BARE, ("_",))):      # then: what must follow, unread
            if self.ahead(pattern + then):
                layer = self.peek(pattern.index(NUMBER)).text
                self.pos += len(pattern)
                return layer
        return None

    def marks(self, text: list[str]) -> tuple[bool, int | None]:
        """A prime and a sample index after a name, in either order, each also appended to ``text``."""
        prime = False
        index = None
        for _ in range(2):
            if (self.at("'") or self.new_mark()) and not prime:
                self.pos += self.new_mark() or 1
                prime = True
                text.append("'")
            elif index is None and (inner := self.sample_index()) is not None:
                index = 0 if inner.text == "n" else int(inner.text)
                text.append(f"[{inner.text}]")
        return prime, index

    def new_mark(self) -> int:
        """How many tokens the mark of an updated value takes (w_5^+, w5_new, w5^{new}: w5'), or 0 for none."""
        for mark in UPDATED_MARKS:
            if all(self.peek(k).text == text and self.peek(k).kind in ("op", "name") for k, text in enumerate(mark)):
                return len(mark)
        return 0

    def sample_index(self) -> Token | None:
        """The k or n of a sample index [k] or [n], consumed; None if there is none."""
        inner = self.peek(SAMPLE_INDEX.index(NUMBER))
        if not (self.ahead(SAMPLE_INDEX) and inner.text.isdigit()
                or self.at("[") and inner.text == "n" and self.at("]", 2)):
            return None
        if inner.kind != "name" and int(inner.text) == 0:
            raise fail(inner.column, "samples are numbered from 1")
        self.pos += len(SAMPLE_INDEX)
        return inner

    def subscript(self) -> str:
        """A subscript's content as plain text: ``6``, ``{h_1}`` → ``h1``, ``o`` → ``o``."""
        if self.at("{"):
            opening = self.take()
            parts = []
            while not self.at("}"):
                token = self.take()
                if token.kind in ("num", "name") and (token.kind == "name" or token.text.isdigit()):
                    parts.append(token.text)
                elif token.kind == "op" and token.text in "_,":
                    continue
                else:
                    raise fail(token.column, f"expected letters or digits in the subscript opened at column "
                                              f"{opening.column}; got {_describe(token)}")
                if len(parts) > 8:
                    raise fail(token.column, "subscript too long")
            self.take()
            if not parts:
                raise fail(opening.column, "empty subscript")
            return "".join(parts)
        token = self.take()
        if token.kind == "num" and token.text.isdigit():
            return token.text
        if token.kind == "name":
            return token.text
        raise fail(token.column, f"expected a subscript; got {_describe(token)}")

    # -- derivatives: dE/dw5, ∂E/∂w5, \frac{\partial E}{\partial w_5} ------------------------------
    def is_derivative(self) -> bool:
        token = self.peek()
        if token.kind != "name":
            return False
        if token.text == "d":
            nxt = self.peek(1)
            return nxt.kind == "name" and LOSS_WORDS.match(nxt.text) is not None
        return token.text.startswith("d") and LOSS_WORDS.match(token.text[1:]) is not None and (
            self.at("/", 1) or self.at("_", 1))

    def is_local_factor(self) -> bool:
        """do1/dz_o1 or ∂o1/∂z_o1: one factor of the chain, a value's derivative by the value it is computed from."""
        first, second = self.peek(), self.peek(1)
        if first.kind == "partial":
            return second.kind == "name" and LOSS_WORDS.match(second.text) is None
        return (first.kind == "name" and len(first.text) > 1 and first.text.startswith("d")
                and not self.is_derivative() and any(t.text == "/" for t in self.tokens[self.pos:]))

    def is_derivative_fraction(self) -> bool:
        if not self.at("{"):
            return False
        first = self.peek(1)
        return first.kind == "partial" or (first.kind == "name" and (
            (first.text == "d" and self.peek(2).kind == "name") or
            (first.text.startswith("d") and LOSS_WORDS.match(first.text[1:]) is not None)))

    def derivative_ref(self) -> tuple[str, NameRef]:
        if self.peek().kind == "frac":
            self.take()
            self.expect("{", "'{'")
            loss = self.loss_name()
            self.expect("}", "'}' after the loss")
            self.expect("{", "'{' before the variable")
            ref = self.variable()
            self.expect("}", "'}' after the variable")
            return loss, ref
        loss = self.loss_name()
        self.expect("/", "'/' in dE/dNAME")
        return loss, self.variable()

    def loss_name(self) -> str:
        token = self.take()
        if token.kind == "partial":
            word = self.take()
            if word.kind != "name":
                raise fail(word.column, f"expected the loss after ∂; got {_describe(word)}")
            text = word.text
        elif token.kind == "name" and token.text == "d":
            text = self.take().text
        elif token.kind == "name" and token.text.startswith("d"):
            text = token.text[1:]
        else:
            raise fail(token.column, f"expected dE or ∂E; got {_describe(token)}")
        if self.at("_"):                          # E_total, E_{tot}
            self.take()
            text += self.subscript()
        if not LOSS_WORDS.match(text):
            raise fail(token.column, f"expected the loss (a capital letter such as E or L); got {text!r}")
        return text

    def variable(self) -> NameRef:
        token = self.peek()
        if token.kind == "partial":
            self.take()
            return self.name_ref()
        if token.kind == "name" and token.text.startswith("d"):
            return self.name_ref(strip="d")
        raise fail(token.column, f"expected dNAME or ∂NAME; got {_describe(token)}")


def _spellings(base: str, layer: str | None, subs: list[str], index: int | None
               ) -> tuple[tuple[str, int | None], ...]:
    """Plain names a written name may stand for: ``w_{6}`` → w6, ``z_{h_1}`` → z_h1, ``a^{(1)}_2`` → a1_2."""
    out: list[tuple[str, int | None]] = []

    def add(parts: list[str], idx: int | None) -> None:
        stem = base + (layer or "")
        if not parts:
            out.append((stem, idx))
            return
        joined = "_".join(parts)
        glued = "".join(parts)
        for name in ((f"{stem}_{joined}", f"{stem}{glued}") if layer else (f"{stem}{glued}", f"{stem}_{joined}")):
            if (name, idx) not in out:
                out.append((name, idx))

    add(subs, index)
    if subs and subs[-1] == "n" and index is None:          # o_n: the sample variable
        add(subs[:-1], 0)
    return tuple(out)


def _describe(token: Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


_UNDEFINED = (sp.zoo, sp.nan, sp.oo, -sp.oo)


def _checked(expr: Expr, column: int) -> Expr:
    """Reject undefined constants (1/0, log 0) as soon as SymPy produces them.

    Every operand was checked when it was built, so looking at the new node and its own
    arguments suffices (and keeps parsing linear in the claim's length).
    """
    if expr in _UNDEFINED or any(a in _UNDEFINED for a in expr.args):
        raise fail(column, "undefined: division by zero or the logarithm of 0")
    return expr


def _power(base: Expr, exponent: Expr, column: int) -> Expr:
    """base^exponent, refusing constant exponents and exact results too large to be sensible."""
    if exponent.is_number:
        if not exponent.is_Rational:
            if base.is_number:
                raise fail(column, "a constant power needs a rational exponent")
        else:
            if abs(exponent.p) > MAX_EXPONENT or exponent.q > MAX_ROOT:
                raise fail(column, f"exponent too large (at most {MAX_EXPONENT} and roots up to {MAX_ROOT})")
            if base.is_Rational:
                digits = max(abs(base.p), base.q).bit_length() * 0.30103 * abs(float(exponent))
                if digits > MAX_MAGNITUDE:
                    raise fail(column, f"number too large (about 10^{int(digits)})")
    elif base.is_number and base.is_Rational and abs(base) > 10 ** 6:
        raise fail(column, "the base of a variable power must be small")
    return _checked(base ** exponent, column)


# -- claims ------------------------------------------------------------------------------------

def parse_expression(text: str, words: Vocabulary | None) -> Rhs:
    """The expression ``text`` as SymPy, built only from whitelisted tokens.

    >>> parse_expression("2*(1 - 1/2)", None).expr
    1
    """
    return parse_rhs(tokenize(text), words)


def parse_rhs(tokens: list[Token], words: Vocabulary | None) -> Rhs:
    """The right-hand side from its tokens (those after the '=')."""
    parser = _Parser(tokens, words)
    if parser.peek().kind == "end":
        raise fail(parser.peek().column, "expected an expression after '='")
    expr = parser.expression()
    token = parser.peek()
    if token.kind != "end":
        raise fail(token.column, f"unexpected {_describe(token)}")
    written, decimals = _precision(tokens[:-1], parser.decimals)
    constants = {s.name for s in expr.free_symbols} <= {"eta", "N"}       # a number worked out by hand
    if written != "expression" or not constants:
        return Rhs(expr, written, decimals)
    tracking = _Parser(tokens, words, track=True)       # the same tokens again, each number a symbol
    try:
        tracked = tracking.expression()
    except ClaimError:          # a form that needs its numbers as numbers (max(0, …)): no rounding to follow
        return Rhs(expr, written, decimals)
    return Rhs(expr, written, decimals, tuple(tracking.literals), tracked)


def _precision(tokens: list[Token], literals: list[int]) -> tuple[str, int | None]:
    """How precise a number claims to be: 0.17 → 2 decimals, 1.7e-2 and 1.7·10^{-2} → 3, 1/3 → exact.

    For a constant expression the most precise literal counts; -1 in ``literals`` marks an integer.
    """
    ops = [t.text for t in tokens]
    core = tokens[1:] if ops[:1] in (["-"], ["+"]) else tokens
    kinds = [t.kind for t in core]
    texts = [t.text for t in core]
    if kinds == ["num"]:
        return "number", _decimals(texts[0])
    # m * 10^k, m \times 10^{k}, m·10^{-k}
    m = re.fullmatch(r"(\S+) \* 10 \^ (?:\{ )?(-|\+)? ?(\d+)(?: \})?", " ".join(texts))
    if m and core[0].kind == "num":
        places = _decimals(texts[0])
        k = int(m.group(3)) * (-1 if m.group(2) == "-" else 1)
        return "number", None if places is None and k >= 0 else max(0, (places or 0) - k)
    given = [d for d in literals if d >= 0]
    return "expression", (max(given) if given else None)


def _decimals(literal: str) -> int | None:
    """Decimals a literal claims: 0.170 → 3, 17 → exact (None), 1.7e-2 → 3, 2e3 → exact."""
    mantissa, _, exp = literal.lower().partition("e")
    places = len(mantissa.partition(".")[2]) if "." in mantissa else 0
    places -= int(exp) if exp else 0
    if "." not in mantissa and places <= 0:
        return None
    return max(0, places)


def top_level_equals(tokens: list[Token]) -> list[int]:
    """The positions of the '=' that separate sides: not those in braces (\\sum_{n=1}^{N})."""
    out, depth = [], 0
    for i, t in enumerate(tokens):
        if t.kind == "op":
            depth += (t.text == "{") - (t.text == "}")
            if t.text == "=" and depth == 0:
                out.append(i)
    return out


def chained(text: str) -> list[str] | None:
    """'A = B = C' (as Mazur writes 0.7414*0.1868*0.5933 = 0.0822) as the claims 'A = B' and 'A = C'; None for
    a claim with one '='."""
    tokens = tokenize(text)
    equals = top_level_equals(tokens)
    if len(equals) < 2:
        return None
    doubled = next((j for i, j in zip(equals, equals[1:]) if j == i + 1), None)
    if doubled is not None:
        raise fail(tokens[doubled].column, "one '=' between the two sides, not '=='")
    lhs = text[:tokens[equals[0]].column - 1].strip()
    bounds = [tokens[i].end - 1 for i in equals] + [len(text)]
    stops = [tokens[i].column - 1 for i in equals[1:]] + [len(text)]
    return [f"{lhs} = {text[start:stop].strip()}" for start, stop in zip(bounds, stops)]


def split_claim(tokens: list[Token]) -> tuple[list[Token], list[Token]]:
    """The tokens left and right of the single '='."""
    equals = top_level_equals(tokens)
    if not equals:
        raise ClaimError("expected 'LHS = RHS', e.g. 'dE/dw5 = 0.17'; found no '='")
    if len(equals) > 1:
        raise fail(tokens[equals[1]].column, "one '=' per claim; write 'A = B = C' as two claims")
    i = equals[0]
    end = tokens[-1]
    return tokens[:i] + [Token("end", "", tokens[i].column, tokens[i].column)], tokens[i + 1:] or [end]


def parse_lhs(tokens: list[Token]) -> Lhs:
    """``dE/dNAME`` (any loss letter, ∂ or \\frac forms), or a name with prime and sample index."""
    parser = _Parser(tokens, None)
    first = parser.peek()
    if first.kind == "end":
        raise fail(first.column, "expected a quantity before '=', e.g. dE/dw5 or o")
    if parser.is_local_factor():
        of = parser.variable()
        parser.expect("/", "'/' in do1/dz_o1")
        lhs = Lhs("local", parser.variable(), of=of)
    elif first.kind in ("frac", "partial") or (first.kind == "name" and parser.is_derivative()):
        loss, ref = parser.derivative_ref()
        lhs = Lhs("derivative", ref, loss)
    elif first.kind == "name":
        lhs = Lhs("name", parser.name_ref())
    else:
        raise fail(first.column, f"expected a quantity before '=' such as dE/dw5, w5' or o; got {_describe(first)}")
    token = parser.peek()
    if token.kind != "end":
        raise fail(token.column, f"unexpected {_describe(token)} on the left of '='")
    return lhs


def parse_claim(text: str, words: Vocabulary | None) -> Claim:
    """``LHS = RHS`` read into a Claim; ClaimError (one line, with the column) when it cannot be read."""
    if not isinstance(text, str):
        raise ClaimError(f"a claim must be text; got {type(text).__name__}")
    tokens = tokenize(text)
    left, right = split_claim(tokens)
    lhs = parse_lhs(left)
    return Claim(text, lhs, parse_rhs(right, words))


# what the matrix reader (derive/check/matrices.py) builds on: the scalar grammar and its messages
Parser = _Parser
describe = _describe
checked_power = _power
