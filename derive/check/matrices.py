"""Matrix and vector claims: the matrices the documents name (W1, X, A1, Delta2, dE/dW1 …) read into
grids of the checker's scalar names, so that each entry is judged as the scalar claim it stands for."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from collections import Counter
from typing import Callable, Iterator, Mapping

import sympy as sp
from sympy import Expr, ImmutableMatrix

from derive.check.claims import (
    CANONICAL,
    FUNCTIONS,
    SAMPLE_INDEX,
    Lhs,
    Literal,
    NameRef,
    Parser,
    Rhs,
    checked_power,
    describe,
    parse_lhs,
    parse_rhs,
    split_claim,
)
from derive.check.tokens import HADAMARD, TRANSPOSE, Token, fail, tokenize
from derive.check.quantities import Model, Quantity, Words
from derive.derived.formulas import J, N, as_by_hand, bias_matrix, loss_slope, matrix_form, weight_matrix
from derive.derived.formulas import entrywise as entrywise_form
from derive.errors import ClaimError
from derive.model.plain import PlainPrinter
from derive.model.registry import ACTIVATIONS

# activations of a whole layer (softmax): a matrix claim applies them to each sample; the others by their
# registry name too (linear(Z1), as the notation table prints it, where a scalar claim has no spelling)
LAYER_FUNCTIONS = {a.name: a for a in ACTIVATIONS.values() if not a.elementwise}
ENTRYWISE_ACTIVATIONS = {a.name for a in ACTIVATIONS.values() if a.elementwise}
MAX_CELLS = 10_000          # entries of any matrix a claim builds (a 10⁶-cell literal is refused long before)
MAX_WORK = 1_000_000        # multiplications of one matrix product
MAX_NODES = 200_000         # terms in the entries of one matrix (products of products grow fast)
MAX_VARIANTS = 24           # changed readings of a wrong matrix claim tried for a diagnosis


# -- the matrices of a network, as names ---------------------------------------------------------

Cells = tuple[tuple[tuple[str, int | None], ...], ...]      # each entry's plain name and sample index

@dataclass(frozen=True)
class MatrixName:
    """A matrix the documents name: each entry's plain name and sample index (None: the same for every
    sample), and whether the matrix holds the loss's derivatives by those names (dE/dW1) or the names."""

    plain: str
    cells: Cells
    derivative: bool = False

    @property
    def per_sample(self) -> bool:
        """One row or column per sample (X, Z1, A1, Delta1), not the same for every sample (W1, dE/dW1)."""
        return any(index is not None for line in self.cells for _, index in line)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.cells), len(self.cells[0])


def matrix_names(m: Model) -> dict[str, MatrixName]:
    """Every matrix name of the network: the documents' W1, b1, Z1, A1, Delta1, dE/dW1, dE/db1, dE/dA2, X, Y
    and the usual aliases (delta1, dZ1, dW1, db1, dA2, A0)."""
    key = ("matrix names",)
    if key not in m._memo:
        own = dict(_all_matrices(m))
        names = dict(own)
        # the spec's own (the third seed's O for A2), each read from derive's names: with [notation].symbols
        # Y = "T" and A2 = "Y" the targets are T and Y the outputs, whatever the order
        for alias, target in m.spec.aliases:
            for prefix in ("", "dE/d"):
                if prefix + target in own:
                    names[prefix + alias] = own[prefix + target]
        m._memo[key] = names
    return m._memo[key]


def _all_matrices(m: Model) -> Iterator[tuple[str, MatrixName]]:
    for name, aliases in _named_matrices(m):
        for alias in (name.plain, *aliases):
            yield alias, name


def _named_matrices(m: Model) -> Iterator[tuple[MatrixName, tuple[str, ...]]]:
    """Each matrix with its other names; with one sample also the single-sample formulas' vectors (z1 = W1 x + b1)."""
    net, one = m.net, m.N == 1
    yield MatrixName("X", _grid(m, net.inputs)), ("A0",) + (("x",) if one else ())
    yield MatrixName("Y", _grid(m, net.targets)), ("y",) if one else ()
    for l in range(1, m.spec.depth + 1):
        nets, acts = net.nets[l - 1], net.activations[l - 1]
        W, b = _given(m, weight_matrix(net, l)), bias_matrix(net, l)
        yield MatrixName(f"W{l}", W), ()
        yield MatrixName(f"dE/dW{l}", W, True), (f"dW{l}",)
        if b is not None:
            yield MatrixName(f"b{l}", _given(m, b)), ()
            yield MatrixName(f"dE/db{l}", _given(m, b), True), (f"db{l}",)
        yield MatrixName(f"Z{l}", _grid(m, nets)), (f"z{l}",) if one else ()
        yield MatrixName(f"A{l}", _grid(m, acts)), (f"a{l}",) if one else ()
        yield MatrixName(f"dE/dA{l}", _grid(m, acts), True), (f"dA{l}",) + ((f"dE/da{l}",) if one else ())
        yield (MatrixName(f"Delta{l}", _grid(m, [m.d.adjoint[z] for z in nets])),
               (f"delta{l}", f"dZ{l}", f"dE/dZ{l}") + ((f"dE/dz{l}",) if one else ()))
        # sample n's vectors, as the softmax's Jacobian is written: delta2_n = (diag(a2_n) - a2_n a2_n^T) dE/da2_n
        yield MatrixName(f"a{l}_n", _sample_n(m, acts)), ()
        yield MatrixName(f"dE/da{l}_n", _sample_n(m, acts), True), ()
        yield MatrixName(f"delta{l}_n", _sample_n(m, [m.d.adjoint[z] for z in nets])), ()


def _grid(m: Model, symbols) -> Cells:
    """Per-sample values: one row per unit and one column per sample (transposed in the row convention)."""
    cells = tuple(tuple((m.plain.get(s) or m.display[s], None if m.N == 1 else n + 1) for n in range(m.N))
                  for s in symbols)
    return tuple(zip(*cells)) if m.spec.convention.rows else cells


def _sample_n(m: Model, symbols) -> Cells:
    """One sample's values as a column (a row in the row convention), for the sample variable n."""
    column = tuple(((m.plain.get(s) or m.display[s], 0),) for s in symbols)
    return tuple(zip(*column)) if m.spec.convention.rows else column


def _given(m: Model, M: ImmutableMatrix) -> Cells:
    """The parameters' names, laid out as the matrix W1 or b1."""
    return tuple(tuple((m.plain[M[i, j]], None) for j in range(M.cols)) for i in range(M.rows))


def matrix_of(names: Mapping[str, MatrixName], ref: NameRef, derivative: bool,
              scalars: Mapping[str, object] | None = None) -> MatrixName | None:
    """The matrix a written name (with dE/d in front when ``derivative``) stands for, if any; a name in
    ``scalars`` (the left side of a claim: b1 of a network whose units have biases b1, b2 …) is no matrix."""
    for plain, index in ref.spellings:
        if scalars is not None and plain in scalars:
            return None
        found = names.get(("dE/d" if derivative else "") + plain)
        if found is not None and index is None:
            return found
    return None


def cell_ref(plain: str, index: int | None, column: int, prime: bool = False) -> NameRef:
    return NameRef(plain, ((plain, index),), prime, column)


# -- what the left side names -----------------------------------------------------------------

@dataclass(frozen=True)
class MatrixQuantity:
    """The matrix a claim's left side names, and the scalar Quantity of each of its entries."""

    label: str                                  # dE/dW1, Delta2, W1'
    name: MatrixName
    cells: tuple[tuple[Quantity, ...], ...]
    updated: bool = False                       # W1': the weights after the update

    @property
    def shape(self) -> tuple[int, int]:
        return self.name.shape


def matrix_quantity(m: Model, lhs: Lhs, scalar_first: bool = True) -> MatrixQuantity | None:
    """The matrix the left side names (dE/dW2, Delta1, Z1, W1' …), or None for a scalar one; a name that is
    also a scalar's (b1 of a shared bias) is the scalar unless not ``scalar_first``."""
    if lhs.kind == "local" or (lhs.kind == "derivative" and lhs.loss == "e"):
        return None
    derivative = lhs.kind == "derivative"
    name = matrix_of(matrix_names(m), lhs.ref, derivative, m.entries if scalar_first else None)
    if name is None:
        return None
    updated = lhs.ref.prime
    if updated and (name.derivative or not name.plain.startswith(("W", "b"))):
        raise ClaimError(f"column {lhs.ref.column}: only the weights and biases change with the update: "
                         f"write W1' or b1'")
    if not updated and not name.derivative and name.plain in ("X", "Y"):
        raise ClaimError(f"column {lhs.ref.column}: {name.plain} is the {'inputs' if name.plain == 'X' else 'targets'} "
                         f"given by the spec; claim a matrix the derivation computes, such as Z1, A1, Delta1 or dE/dW1")
    if not updated and not name.derivative and name.plain.startswith(("W", "b")):
        raise ClaimError(f"column {lhs.ref.column}: {name.plain} is given by the spec; claim dE/d{name.plain} "
                         f"or {name.plain}' (its value after the update)")
    kind = "derivative" if name.derivative else "name"
    cells = tuple(tuple(m.quantity(Lhs(kind, cell_ref(plain, index, lhs.ref.column, updated), lhs.loss or "E"))
                        for plain, index in line) for line in name.cells)
    label = m.net.notation.shown(name.plain) + ("'" if updated else "")      # in the spec's symbols
    if derivative and lhs.loss not in ("", "E"):
        label = label.replace("dE/", f"d{lhs.loss}/", 1)
    return MatrixQuantity(label, name, cells, updated)


# -- the right side: values that are matrices or numbers ------------------------------------------

@dataclass(frozen=True)
class MValue:
    """A value of a matrix claim: a matrix of scalar expressions, or a scalar (it broadcasts).

    ``shown`` is how the claim wrote it (Delta2, A1^T, (W2^T Delta2)), for a message about shapes;
    ``literals`` holds each entry's scalar reading when the value is a bracketed matrix of numbers.
    """

    cells: ImmutableMatrix
    scalar: bool
    shown: str
    literals: tuple[tuple[WrittenEntry, ...], ...] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.cells.rows), int(self.cells.cols)

    @property
    def expr(self) -> Expr:
        return self.cells[0, 0]


@dataclass(frozen=True)
class WrittenEntry:
    """One entry of a bracketed matrix: its scalar reading (with the decimals it claims) and its text."""

    rhs: Rhs
    text: str


# what a Variant changes: the transpose of one matrix name, one matrix product read as entrywise, or one
# matrix name for the same matrix of the layer above or below (X for A1)
TRANSPOSED, ENTRYWISE, NEIGHBOUR, SUMMED = "transposed", "entrywise", "neighbour", "summed"
ENTRYWISE_POWER = ".^"


# the catalogue's key for the mistake each change undoes
MISTAKES = {TRANSPOSED: "transposed", ENTRYWISE: "matrix_product_for_entrywise", NEIGHBOUR: "wrong_layer",
            SUMMED: "missing_sum"}


@dataclass(frozen=True)
class Variant:
    """One change to a claim's right side: its ``index``-th matrix name transposed or (``choice``) another
    layer's, or its ``index``-th matrix product read as an entrywise one (counted from 0, in reading order)."""

    kind: str
    index: int
    choice: int = 0


_LAYERED = re.compile(r"(dE/d)?(W|b|Z|A|Delta)(\d+)")


def neighbours(names: Mapping[str, MatrixName], name: MatrixName) -> list[MatrixName]:
    """The same matrix of the layer below and above (A0 is X): what a student writes for the wrong layer."""
    m = _LAYERED.fullmatch("A0" if name.plain == "X" else name.plain)
    if m is None:
        return []
    prefix, kind, layer = m.group(1) or "", m.group(2), int(m.group(3))
    out = []
    for other in (layer - 1, layer + 1):
        plain = "X" if (kind, other) == ("A", 0) and not prefix else f"{prefix}{kind}{other}"
        if plain in names and names[plain].plain == plain:
            out.append(names[plain])
    return out


class ShapeMismatch(Exception):
    """Two matrices of a claim that an operation cannot combine: a verdict (the claim is wrong), not an error."""


def _bare(shown: str) -> str:
    """A function's argument as written, without the one pair of parentheses that the call adds back."""
    return shown[1:-1] if shown.startswith("(") and shown.endswith(")") else shown


def shape_text(shape: tuple[int, int]) -> str:
    return f"{shape[0]}×{shape[1]}"


def scalar(expr: Expr, shown: str) -> MValue:
    return MValue(ImmutableMatrix([[expr]]), True, shown)


def _sized(cells: ImmutableMatrix, column: int) -> ImmutableMatrix:
    if cells.rows * cells.cols > MAX_CELLS:
        raise fail(column, f"the matrix is too large ({cells.rows}×{cells.cols}; at most {MAX_CELLS} entries)")
    return cells


def entrywise(a: MValue, b: MValue, op: Callable[[Expr, Expr], Expr], verb: str, shown: str) -> MValue:
    """a op b entry by entry (+, −, ⊙, /); a scalar applies to every entry, and a row or a column (a bias b1)
    to every row or column, as numpy broadcasts."""
    if a.scalar and b.scalar:
        return scalar(op(a.expr, b.expr), shown)
    shape = _broadcast(a, b, spread=verb in ("added", "subtracted"))
    if shape is None:
        raise ShapeMismatch(f"{a.shown} ({shape_text(a.shape)}) and {b.shown} ({shape_text(b.shape)}) cannot be "
                            f"{verb}: entry by entry needs the same shape")
    A, B = _spread(a, shape), _spread(b, shape)
    cells = ImmutableMatrix(shape[0], shape[1], [op(u, v) for u, v in zip(A, B)])
    return MValue(_bounded(cells, shown), False, shown)


def _broadcast(a: MValue, b: MValue, spread: bool) -> tuple[int, int] | None:
    """The shape two values combine to entry by entry: a number (or a 1×1 matrix) goes with any shape; a sum
    also spreads a row or a column over a matrix (Z1 = X*W1 + b1), never a column and a row into a matrix."""
    if a.scalar or a.shape == (1, 1):
        return b.shape
    if b.scalar or b.shape == (1, 1):
        return a.shape
    if a.shape == b.shape:
        return a.shape
    if not spread:
        return None
    sides = []
    for x, y in zip(a.shape, b.shape):
        if x != y and 1 not in (x, y):
            return None
        sides.append(max(x, y))
    shape = (sides[0], sides[1])
    return shape if shape in (a.shape, b.shape) else None


def _spread(a: MValue, shape: tuple[int, int]) -> ImmutableMatrix:
    if a.scalar:
        return ImmutableMatrix.ones(*shape) * a.expr
    rows, cols = a.shape
    return ImmutableMatrix(shape[0], shape[1], lambda i, j: a.cells[i if rows > 1 else 0, j if cols > 1 else 0])


def product(a: MValue, b: MValue, shown: str) -> MValue:
    """The matrix product; a scalar scales the matrix."""
    if a.scalar or b.scalar:
        return entrywise(a, b, lambda u, v: u * v, "multiplied", shown)
    if a.shape[1] != b.shape[0]:
        raise ShapeMismatch(f"{a.shown} ({shape_text(a.shape)}) times {b.shown} ({shape_text(b.shape)}) does not "
                            f"multiply: {a.shape[1]} column{'s' * (a.shape[1] != 1)} against {b.shape[0]} "
                            f"row{'s' * (b.shape[0] != 1)}" + _fix(a, b))
    if a.shape[0] * b.shape[1] > MAX_CELLS or a.shape[0] * a.shape[1] * b.shape[1] > MAX_WORK:
        raise ClaimError(f"the product {shown} is too large ({shape_text(a.shape)} times {shape_text(b.shape)}; "
                         f"at most {MAX_CELLS} entries)")
    return MValue(_bounded(ImmutableMatrix(a.cells * b.cells), shown), False, shown)


def _bounded(cells: ImmutableMatrix, shown: str) -> ImmutableMatrix:
    """Refuse a matrix whose entries have grown past MAX_NODES (products of products): a bounded walk."""
    nodes = 0
    for cell in cells:
        for _ in sp.preorder_traversal(cell):
            nodes += 1
            if nodes > MAX_NODES:
                raise ClaimError(f"{shown} is too large to check (its entries have more than {MAX_NODES} terms)")
    return cells


def _fix(a: MValue, b: MValue) -> str:
    """Which transpose would make a product multiply, as a hint."""
    for left, right, text in ((a.cells.T, b.cells, f"{_flipped(a.shown)} * {b.shown}"),
                              (a.cells, b.cells.T, f"{a.shown} * {_flipped(b.shown)}"), (b.cells, a.cells, f"{b.shown} * {a.shown}")):
        if left.cols == right.rows:
            return f" ({text} would)"
    return ""


def _flipped(shown: str) -> str:
    """A factor's transpose as a student writes it: W2 for W2^T (not W2^T^T), W2^T for W2."""
    return shown[:-2] if shown.endswith("^T") and shown[:-2].isalnum() else f"{shown}^T"


def transposed(a: MValue, shown: str) -> MValue:
    return a if a.scalar else MValue(a.cells.T, False, shown)


def summed(a: MValue, row: bool, shown: str) -> MValue:
    """sum(M): the sum over the samples, one per unit (M's rows in the column convention, its columns in the row)."""
    if a.scalar:
        raise ShapeMismatch(f"sum({a.shown}) sums a matrix over the samples; {a.shown} is a number")
    cells = a.cells
    out = [sum(cells.row(i)) for i in range(cells.rows)] if not row else [sum(cells.col(j)) for j in range(cells.cols)]
    return MValue(ImmutableMatrix([out]) if row else ImmutableMatrix(out), False, shown)


# -- the right side: the parser -----------------------------------------------------------------

@dataclass
class MatrixParser(Parser):
    """The right side of a matrix claim: matrix names, ^T, products (*, @, \\cdot, juxtaposition), ⊙, +, −,
    functions entry by entry (sigma'(Z1)), sum over the samples, ones vectors (1_N) and bracketed matrices.
    Numbers and scalar names are read by the scalar grammar and scale or shift every entry."""

    model: Model | None = None
    names: Mapping[str, MatrixName] = field(default_factory=dict)
    variant: Variant | None = None      # read the claim with one change, to see whether it would then hold
    seen: Counter = field(default_factory=Counter)      # matrix names and matrix products read so far
    recorded: str = ""                  # the variant's change in words
    sum_all: bool = False               # sum(…) adds every entry (a claim about one number), not the samples

    def source(self, start: int) -> str:
        """The tokens from ``start`` as a message quotes them: W1^T * Delta2, Delta2 X^T, 1_5."""
        spaced = {"+", "-", "*", "@", HADAMARD, "/"}
        out, previous = [], None
        for t in self.tokens[start:self.pos]:
            word = t.kind in ("name", "num") or t.text in ("(", "[")
            if previous is not None and word and (previous.kind in ("name", "num") or previous.text in (")", "]", "T")):
                out.append(" ")                 # juxtaposition: Delta2 X^T, not Delta2X^T
            out.append(f" {t.text} " if t.kind == "op" and t.text in spaced else t.text)
            previous = t
        return " ".join("".join(out).split())

    def changed(self, kind: str) -> bool:
        """Whether this is the occurrence the variant changes (counting every occurrence of ``kind``)."""
        self.seen[kind] += 1
        return self.variant is not None and self.variant.kind == kind and self.variant.index == self.seen[kind] - 1

    # matrix_expression := matrix_term (('+'|'-') matrix_term)*
    def matrix_expression(self) -> MValue:
        start = self.pos
        result = self.matrix_term()
        while self.at("+") or self.at("-"):
            sign = self.take().text
            right = self.matrix_term()
            op = (lambda u, v: u + v) if sign == "+" else (lambda u, v: u - v)
            result = entrywise(result, right, op, "added" if sign == "+" else "subtracted", self.source(start))
        return result

    # matrix_term := matrix_unary (('*'|'.*'|'/'|juxtaposition) matrix_unary)*
    def matrix_term(self) -> MValue:
        start = self.pos
        result = self.matrix_unary()
        while True:
            token = self.peek()
            if self.at("*") or self.at("@") or self.at(HADAMARD) or self.at("/"):
                self.take()
            elif not self.starts_atom(token):
                return result
            right = self.matrix_unary()
            shown = self.source(start)
            matrices = not (result.scalar or right.scalar)
            if matrices and token.text not in (HADAMARD, "/") and self.changed(ENTRYWISE):
                self.recorded = f"the product {shown} is entry by entry here (.* or ⊙), not a matrix product"
                result = entrywise(result, right, lambda u, v: u * v, "multiplied", shown)
            elif token.text == HADAMARD:
                result = entrywise(result, right, lambda u, v: u * v, "multiplied", shown)
            elif token.text == "/":
                result = entrywise(result, right, lambda u, v: u / v, "divided", shown)   # numpy's and ⊘
            else:
                result = product(result, right, shown)

    def matrix_unary(self) -> MValue:
        token = self.peek()
        self.deeper(token.column)
        try:
            if self.at("-") or self.at("+"):
                self.take()
                operand = self.matrix_unary()
                if token.text == "+":
                    return operand
                return entrywise(scalar(sp.S.NegativeOne, "-1"), operand, lambda u, v: u * v, "multiplied",
                                 "-" + operand.shown)
            return self.postfix(self.primary())
        finally:
            self.depth -= 1

    def postfix(self, value: MValue) -> MValue:
        """A1^T, A1^{T}, A1^\\top, A1' and A1.T transpose; a number's power stays a number."""
        while True:
            if self.at(TRANSPOSE) or self.at("'"):
                self.take()
            elif self.ahead(("^",)) and self.peek(1).text == "T":
                self.pos += 2
            elif self.ahead(("^", "{")) and self.peek(2).text == "T" and self.at("}", 3):
                self.pos += 4
            elif self.at("^") and value.scalar:
                token = self.take()
                exponent = self.exponent()
                value = scalar(checked_power(value.expr, exponent, token.column), value.shown)
                continue
            elif self.at(ENTRYWISE_POWER) or self.ahead(("^", "{", HADAMARD)):
                value = self.entrywise_power(value)
                continue
            elif self.at("^"):
                raise fail(self.peek().column, f"{value.shown} is a matrix: write its transpose as {value.shown}^T, "
                                               f"an entrywise square as {value.shown}.^2 or {value.shown} .* {value.shown}")
            else:
                return value
            value = transposed(value, f"{value.shown}^T")

    def entrywise_power(self, value: MValue) -> MValue:
        """A1.^2 (MATLAB) or A^{\\circ 2}: every entry to a power."""
        token = self.take()
        if token.text == "^":                   # ^{∘ k}
            self.pos += 2
            exponent = self.expression()
            self.expect("}", "'}' to close the entrywise power")
        else:
            exponent = self.exponent()
        cells = value.cells.applyfunc(lambda u: checked_power(u, exponent, token.column))
        return MValue(_bounded(cells, value.shown), value.scalar, f"{value.shown}.^{exponent}")

    def primary(self) -> MValue:
        token = self.peek()
        if self.at("("):
            return self.parenthesized()
        if self.at("["):
            return self.literal()
        if token.kind == "num" and token.text == "1" and self.at("_", 1):
            return self.ones()
        if token.kind == "name" and (token.text in FUNCTIONS or token.text in ENTRYWISE_ACTIVATIONS):
            return self.function()
        if token.kind == "name" and token.text == "diag" and self.at("(", 1):
            return self.diagonal()
        if token.kind == "name" and token.text in LAYER_FUNCTIONS:
            return self.layer_function()
        if token.kind == "name" and token.text in ("sum", "Sum"):
            return self.sample_sum_of_matrix()
        named = self.matrix_name()
        if named is not None:
            return named
        start = self.pos
        return scalar(self.power(), self.source(start) or describe(token))

    def parenthesized(self) -> MValue:
        opening = self.take()
        self.deeper(opening.column)
        try:
            inner = self.matrix_expression()
        finally:
            self.depth -= 1
        self.expect(")", f"')' to close the '(' at column {opening.column}")
        return inner if inner.scalar else MValue(inner.cells, False, f"({inner.shown})", inner.literals)

    def matrix_name(self) -> MValue | None:
        """W1, Delta^{(2)}, dE/dW1 …, or None (and nothing consumed) for a name that is not a matrix."""
        start, token = self.pos, self.peek()
        derivative = token.kind in ("frac", "partial") or (token.kind == "name" and self.is_derivative())
        if not (derivative or token.kind == "name"):
            return None
        try:
            ref = self.derivative_ref()[1] if derivative else self.name_ref()
        except ClaimError:
            self.pos = start
            return None
        name = matrix_of(self.names, ref, derivative)
        if name is None or self.ahead(SAMPLE_INDEX):
            self.pos = start
            return None
        name = self.neighbour(name)
        label = self.label(name)
        value = MValue(self.cells(name, token.column), False, label)
        if self.model is not None and self.model.N > 1 and name.per_sample and self.changed(SUMMED):
            self.recorded = f"{label} has one {'row' if self.row else 'column'} per sample, to be summed: " \
                            f"sum({label})"
            value = summed(value, self.row, f"sum({label})")
        change = self.changed(TRANSPOSED)
        if change:
            as_written = ref.prime != self.transpose_follows()
            written, right = (label + "^T", label) if as_written else (label, label + "^T")
            self.recorded = f"{written} stands where {right} belongs"
        flip = ref.prime != change                              # A1' is A1's transpose here
        return transposed(value, label + "^T") if flip else value

    def label(self, name: MatrixName) -> str:
        """A matrix's name as the messages write it: the spec's [notation].symbols where it gives one."""
        return self.model.net.notation.shown(name.plain) if self.model is not None else name.plain

    def neighbour(self, name: MatrixName) -> MatrixName:
        """The variant's other layer for this name (X for A1, A2 for A1), else the name itself."""
        others = neighbours(self.names, name)
        if not others:
            return name
        self.seen[NEIGHBOUR] += 1
        v = self.variant
        if v is None or v.kind != NEIGHBOUR or v.index != self.seen[NEIGHBOUR] - 1 or v.choice >= len(others):
            return name
        other = others[v.choice]
        self.recorded = f"{self.label(name)} stands where {self.label(other)} belongs"
        return other

    @property
    def row(self) -> bool:
        return self.model is not None and self.model.spec.convention.rows

    def transpose_follows(self) -> bool:
        return self.at(TRANSPOSE) or self.at("'") or (self.at("^") and self.peek(1).text == "T") or (
            self.ahead(("^", "{")) and self.peek(2).text == "T")

    def cells(self, name: MatrixName, column: int) -> ImmutableMatrix:
        """The entries of a named matrix: the symbols the scalar claims use for them."""
        words = self.vocabulary()

        def entry(plain: str, index: int | None) -> Expr:
            ref = cell_ref(plain, index, column)
            return words.derivative("E", ref, False) if name.derivative else words.symbol(ref, False)
        return ImmutableMatrix([[entry(p, k) for p, k in line] for line in name.cells])

    def function(self) -> MValue:
        """sigma'(Z1), tanh(Z1), exp(Z2): the function of every entry."""
        token = self.take()
        name = CANONICAL.get(token.text, token.text)
        power = self.function_power()
        derivative = self.function_prime(name)
        if not self.at("("):
            raise fail(self.peek().column, f"expected '(' after {token.text}; got {describe(self.peek())}")
        argument = self.parenthesized()
        applied = argument.cells.applyfunc(lambda u: self.raised(self.apply(name, derivative, u, token.column), power))
        shown = f"{token.text}{chr(39) * derivative}({_bare(argument.shown)})"
        return MValue(_bounded(applied, shown), argument.scalar, shown)

    def diagonal(self) -> MValue:
        """diag(a2_n): the square matrix with a vector's entries on its diagonal (the softmax's Jacobian)."""
        token = self.take()
        argument = self.parenthesized()
        if argument.scalar or 1 not in argument.shape:
            raise ShapeMismatch(f"diag(…) makes a matrix of a vector; {argument.shown} is "
                                f"{'a number' if argument.scalar else shape_text(argument.shape)}")
        entries = list(argument.cells)
        if len(entries) ** 2 > MAX_CELLS:
            raise fail(token.column, f"diag(…) of {len(entries)} entries is too large (at most {MAX_CELLS} entries)")
        return MValue(ImmutableMatrix.diag(*entries), False, f"{token.text}({_bare(argument.shown)})")

    def layer_function(self) -> MValue:
        """softmax(Z2): an activation of a whole layer, applied to each sample's net inputs."""
        token = self.take()
        if not self.at("("):
            raise fail(self.peek().column, f"expected '(' after {token.text}; got {describe(self.peek())}")
        argument = self.parenthesized()
        if argument.scalar:
            raise ShapeMismatch(f"{token.text} acts on a layer's net inputs; {argument.shown} is a number")
        row = self.row
        cells = argument.cells.T if row else argument.cells
        columns = [ImmutableMatrix(LAYER_FUNCTIONS[token.text].layer(list(cells.col(n)))) for n in range(cells.cols)]
        out = ImmutableMatrix.hstack(*columns)
        shown = f"{token.text}({_bare(argument.shown)})"
        return MValue(_bounded(out.T if row else out, shown), False, shown)

    def sample_sum_of_matrix(self) -> MValue:
        token = self.take()
        if not self.at("("):
            raise fail(self.peek().column, f"expected '(' after sum; got {describe(self.peek())}")
        argument = self.parenthesized()
        shown = f"{token.text}({_bare(argument.shown)})"
        if self.sum_all:                    # a claim about one number: every entry, as numpy's sum
            return scalar(sp.Add(*argument.cells), shown)
        return summed(argument, self.row, shown)

    def ones(self) -> MValue:
        """1_N, 1_{5}, \\mathbf{1}_5: a column of ones (N: one per sample)."""
        first = self.take()
        self.take()                                     # '_'
        braced = self.at("{")
        if braced:
            self.take()
        size = self.take()
        if braced:
            self.expect("}", "'}'")
        if size.kind == "name" and size.text == "N" and self.model is not None:
            n = self.model.N
        elif size.kind == "num" and size.text.isdigit() and 0 < int(size.text) <= MAX_CELLS:
            n = int(size.text)
        else:
            raise fail(size.column, f"expected the length of the ones vector (1_N or 1_5); got {describe(size)}")
        return MValue(_sized(ImmutableMatrix.ones(n, 1), first.column), False, f"1_{n}")

    def literal(self) -> MValue:
        """[[a, b], [c, d]], [a, b; c, d] or \\begin{bmatrix} a & b \\\\ c & d \\end{bmatrix}: numbers by rows."""
        opening = self.take()
        rows: list[list[WrittenEntry]] = []
        if self.at("["):                                # [[a, b], [c, d]]
            while True:
                self.take()
                rows.append(self.cells_until("]"))
                self.expect("]", f"']' to close the row at column {opening.column}")
                if not self.at(","):
                    break
                self.take()
                if not self.at("["):
                    raise fail(self.peek().column, "expected '[' to open the next row")
        else:                                           # [a, b; c, d]
            rows.append(self.cells_until("]"))
            while self.at(";"):
                self.take()
                if self.at("]"):
                    break                               # a bmatrix's last row may end in \\
                rows.append(self.cells_until("]"))
        self.expect("]", f"']' to close the matrix at column {opening.column}")
        if len({len(r) for r in rows}) != 1:
            raise fail(opening.column, f"the rows of the matrix have different lengths ({', '.join(str(len(r)) for r in rows)})")
        cells = _sized(ImmutableMatrix([[c.rhs.expr for c in r] for r in rows]), opening.column)
        return MValue(cells, False, "the matrix of numbers", tuple(tuple(r) for r in rows))

    def cells_until(self, closing: str) -> list[WrittenEntry]:
        """The entries of one row: scalar expressions separated by ',' up to ';' or ``closing``."""
        out = []
        while True:
            start, level = self.pos, 0
            while not (level == 0 and (self.at(",") or self.at(";") or self.at(closing))):
                token = self.take()
                if token.kind == "end":
                    raise fail(token.column, f"expected '{closing}' to close the matrix")
                level += token.kind == "op" and token.text in "([{"
                level -= token.kind == "op" and token.text in ")]}"
            end = self.peek()
            if start == self.pos:
                raise fail(end.column, f"expected a number in the matrix; got {describe(end)}")
            text = "".join(t.text for t in self.tokens[start:self.pos])
            if self.track:                  # the entry again in place: its numbers become this parser's literals
                self.pos = start
                out.append(WrittenEntry(Rhs(self.expression(), "expression", None), text))
            else:
                rhs = parse_rhs(self.tokens[start:self.pos] + [Token("end", "", end.column, end.column)], self.words)
                out.append(WrittenEntry(rhs, text))
            if not self.at(","):
                return out
            self.take()


@dataclass(frozen=True)
class HandWork:
    """A matrix of numbers worked out by hand ([[0.1385], [-0.0381]] [[0.5933, 0.5969]]): its entries with each
    number written a Literal, so that each entry is judged as the scalar hand calculation it is."""

    cells: ImmutableMatrix
    literals: tuple[Literal, ...]

    def entry(self, expr: Expr, i: int, j: int) -> tuple[Rhs, str]:
        """Entry (i, j) as a scalar hand calculation, and as the student wrote it (0.1385*0.5933)."""
        tracked = self.cells[i, j]
        used = tuple(lit for lit in self.literals if lit.symbol in tracked.free_symbols)
        places = [lit.decimals for lit in used if lit.decimals is not None]
        written = PlainPrinter({lit.symbol: _literal_text(lit) for lit in used}).doprint(tracked)
        return Rhs(expr, "expression", max(places) if places else None, used, tracked), written


def _literal_text(lit: Literal) -> str:
    if lit.decimals is None:
        return str(lit.value)
    exact = Decimal(int(lit.value.p)) / Decimal(int(lit.value.q))
    return str(exact.quantize(Decimal(1).scaleb(-lit.decimals)))


def parse_matrix_rhs(m: Model, tokens: list[Token], loss: str, track: bool = False, variant: Variant | None = None,
                     sum_all: bool = False) -> tuple[MValue, list[Literal]]:
    """The right side of a matrix claim (with ``track``, each number a Literal; with ``variant``, one change;
    with ``sum_all``, sum(…) of every entry); ShapeMismatch when its matrices do not fit together."""
    parser = MatrixParser(tokens, Words(m, loss), track=track, model=m, names=matrix_names(m), variant=variant,
                          sum_all=sum_all)
    if parser.peek().kind == "end":
        raise fail(parser.peek().column, "expected an expression after '='")
    value = parser.matrix_expression()
    token = parser.peek()
    if token.kind != "end":
        raise fail(token.column, f"unexpected {describe(token)}")
    return value, parser.literals


def _hand_work(m: Model, tokens: list[Token], loss: str, value: MValue) -> HandWork | None:
    """The hand calculation behind a matrix of numbers computed from rounded ones; None for any other value."""
    constants = set(m.constants)
    numeric = all(cell.free_symbols <= constants for cell in value.cells)
    if not numeric or value.scalar:
        return None
    tracked, literals = parse_matrix_rhs(m, tokens, loss, track=True)
    if not any(lit.decimals is not None for lit in literals):
        return None
    return HandWork(tracked.cells, tuple(literals))


# -- the correct matrix formula -----------------------------------------------------------------

def correct_formula(m: Model, q: MatrixQuantity) -> str:
    """The matrix form of the truth, as the documents print it, in the claim syntax (Delta2 * A1^T); "" when
    the documents have none for it (a softmax layer's Δ is computed one sample at a time)."""
    key = ("matrix formula", q.label)
    if key not in m._memo:
        m._memo[key] = _correct_formula(m, q)
    return m._memo[key]


def _correct_formula(m: Model, q: MatrixQuantity) -> str:
    if q.updated:
        frozen = {c.target in m.frozen for line in q.cells for c in line}
        shown = m.net.notation.shown
        if frozen == {True}:
            return shown(q.name.plain)                          # [train].freeze: it does not move
        return (f"{shown(q.name.plain)} - eta * {shown('dE/d' + q.name.plain)}" if m.one_rate and frozen == {False}
                else "")
    form = matrix_form(m.net)
    # each matrix by the name the documents print ([notation].symbols); a linear layer's A = Z and Δ without
    # f′ are the matrix form's own
    plain: dict = {s: name.plain for s, name in form.names.items() if name.plain != str(s)}
    output = form.layers[-1]
    if output.upstream is not None and q.name.plain == str(output.upstream):
        return matrix_text(_loss_gradient(m, output.A, form.Y), plain)
    for eq in form.forward + form.backward:
        if str(eq.lhs) == q.name.plain:
            return matrix_text(eq.rhs, plain)
    return ""


def _loss_gradient(m: Model, A: sp.MatrixSymbol, Y: sp.MatrixSymbol) -> sp.MatrixExpr:
    """∂E/∂A of the output layer with the batch's N as a letter (2/N * (A2 - Y)): the documents print this
    spec's N, which is right for this batch only."""
    slope, o, y = loss_slope(m.net)
    slope = slope.subs(J, m.J).subs(N, m.n_symbol)
    return entrywise_form(as_by_hand(slope, o), {o: A, y: Y}, lambda: sp.MatrixSymbol("1", *A.shape))


def matrix_text(e, plain: Mapping | None = None) -> str:
    """A matrix expression in the claim syntax: products with *, entrywise ones with .* and /, transposes ^T;
    ``plain`` replaces a matrix by a simpler one (None: a factor of ones, left out) or by a name."""
    plain = plain or {}
    if isinstance(e, sp.MatrixSymbol):
        if isinstance(plain.get(e), str):         # a name of its own
            return plain[e]
        if plain.get(e) is not None:
            return matrix_text(plain[e], plain)
        return "1" if re.fullmatch(r"1_\d+x\d+", e.name) else e.name       # ones, entry by entry: 1 - A2
    if isinstance(e, sp.Transpose):
        return f"{matrix_text(e.args[0], plain)}^T"
    if isinstance(e, sp.DiagMatrix):
        return f"diag({matrix_text(e.args[0], plain)})"
    if isinstance(e, sp.MatMul):
        coeff, factors = e.as_coeff_matrices()
        body = " * ".join(_wrapped(a, plain) for a in factors)
        return f"-{body}" if coeff == -1 else body if coeff == 1 else f"{coeff} * {body}"
    if isinstance(e, sp.HadamardProduct):
        kept = [a for a in e.args if not (a in plain and plain[a] is None)]
        over = [a for a in kept if isinstance(a, sp.HadamardPower) and a.exp == -1]
        top = [a for a in kept if a not in over]
        text = " .* ".join(_wrapped(a, plain, products=len(kept) > 1) for a in top) or "1"
        return text + "".join(f" / {_wrapped(a.base, plain)}" for a in over)
    if isinstance(e, sp.MatAdd):
        return " + ".join(matrix_text(a, plain) for a in e.args).replace("+ -", "- ")
    raise AssertionError(f"no claim syntax for {e!r}")


def _wrapped(e, plain: Mapping, products: bool = False) -> str:
    """A factor's text, in parentheses where it is a sum, a negation (or a product inside an entrywise one)."""
    text = matrix_text(e, plain)
    kinds = (sp.MatAdd, sp.HadamardProduct) + ((sp.MatMul,) if products else ())
    return f"({text})" if isinstance(e, kinds) or text.startswith("-") else text


# -- a matrix claim, read ------------------------------------------------------------------------

@dataclass(frozen=True)
class MatrixReading:
    """A matrix claim: what its left side names, its right side's value (None when its shapes do not fit
    together), and why they do not."""

    quantity: MatrixQuantity
    value: MValue | None
    mismatch: str | None
    loss: str
    hand: HandWork | None = None        # a matrix of numbers computed from rounded numbers, literal by literal
    right: tuple[Token, ...] = ()       # the right side's tokens, to read it again with one change
    number: Rhs | None = None           # a right side that is one number or scalar, read as a scalar claim
    written: str = ""                   # the right side as typed


def variants(m: Model, r: MatrixReading) -> Iterator[tuple[MValue, str, str]]:
    """The claim's right side with one matrix name transposed or one product read entrywise, each value with
    what it changed in words and the mistake's key; those whose shapes do not fit are left out."""
    def reader(variant: Variant | None) -> MatrixParser:
        return MatrixParser(list(r.right), Words(m, r.loss), model=m, names=matrix_names(m), variant=variant)

    counted = reader(None)
    try:
        counted.matrix_expression()
    except ShapeMismatch:
        pass
    tried = [Variant(kind, index) for kind in (TRANSPOSED, ENTRYWISE, SUMMED) for index in range(counted.seen[kind])]
    tried += [Variant(NEIGHBOUR, index, choice) for index in range(counted.seen[NEIGHBOUR]) for choice in (0, 1)]
    for variant in tried[:MAX_VARIANTS]:        # each reads the claim again: a long one gets no search
        parser = reader(variant)
        try:
            value = parser.matrix_expression()
        except ShapeMismatch:
            continue
        if parser.recorded:
            yield value, parser.recorded, MISTAKES[variant.kind]


def scalar_of_matrices(m: Model, text: str) -> tuple[Lhs, list[Token]] | None:
    """A claim about one number whose right side is about matrices (E = 1/2 * sum((A2 - Y) .* (A2 - Y))): its
    left side and right side's tokens; None for any other claim."""
    left, right = split_claim(_transposes_apart(tokenize(text)))
    lhs = parse_lhs(left)
    if not _mentions_matrices(m, right) or matrix_quantity(m, lhs, scalar_first=False) is not None:
        return None
    return lhs, right


def _mentions_matrices(m: Model, tokens: list[Token]) -> bool:
    """Whether a right side is about matrices: a bracketed matrix, or a name, read whole (delta1_1 is a unit's
    δ, not the matrix delta1; \\Delta^{(2)} is Delta2), that only a matrix has."""
    for i, token in enumerate(tokens):               # a bracketed matrix: [ where no name takes a sample index
        if token.kind == "op" and token.text == "[" and (i == 0 or tokens[i - 1].kind != "name"):
            return True
    names = matrix_names(m)
    for i, token in enumerate(tokens):
        if token.kind != "name":
            continue
        try:
            ref = Parser(tokens, None, pos=i).name_ref()
        except ClaimError:
            continue
        if matrix_of(names, ref, False, m.entries) is not None:
            return True
    return False


def read_matrix(m: Model, text: str) -> MatrixReading | None:
    """A claim whose left side names a matrix (dE/dW2 = Delta2 * A1^T), or None for a scalar claim; read
    once per text (a class writes the same lines)."""
    key = ("matrix reading", text)
    if key not in m._memo:
        m._memo[key] = _read_matrix(m, text)
    return m._memo[key]


def _transposes_apart(tokens: list[Token]) -> list[Token]:
    """A^{(1)T} and A^{(1)\\mathsf{T}} (as derive's documents print them) as A^{(1)}^T."""
    out = list(tokens)
    i = 0
    while i + 5 < len(out):
        window = [t.text for t in out[i:i + 6]]
        if window[:3] == ["^", "{", "("] and out[i + 3].kind == "num" and window[4:] == [")", "T"] and \
                i + 6 < len(out) and out[i + 6].text == "}":
            t, closing = out[i + 5], out[i + 6]
            out[i + 5:i + 7] = [closing, Token("op", "^", t.column, t.column), t]
        i += 1
    return out


def _read_matrix(m: Model, text: str) -> MatrixReading | None:
    left, right = split_claim(_transposes_apart(tokenize(text)))
    lhs = parse_lhs(left)
    q = matrix_quantity(m, lhs, scalar_first=not _mentions_matrices(m, right))
    if q is None:
        return None
    loss = lhs.loss or "E"
    try:
        value = parse_matrix_rhs(m, right, loss)[0]
    except ShapeMismatch as exc:
        return MatrixReading(q, None, str(exc), loss, right=tuple(right))
    number = _as_number(m, right, loss) if value.scalar else None
    written = written_side(text, right)
    return MatrixReading(q, value, None, loss, _hand_work(m, right, loss, value), tuple(right), number, written)


def written_side(text: str, side: list[Token]) -> str:
    """A side of a claim exactly as typed, from its tokens' columns (the last token is the side's end)."""
    return text[side[0].column - 1:side[-2].end - 1] if len(side) > 1 else ""


def _as_number(m: Model, tokens: list[Token], loss: str) -> Rhs | None:
    """A right side that is one number or a scalar expression (Delta2 = -0.5226 for a 1×1 Delta2), read as the
    scalar claim it is: with the decimals it claims."""
    try:
        return parse_rhs(list(tokens), Words(m, loss))
    except ClaimError:
        return None
