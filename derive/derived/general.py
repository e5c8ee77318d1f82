"""The general formulas in layer notation (W^(l), δ^(l), any depth), in the network's convention, each checked on its numbers."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from enum import Enum
from fractions import Fraction
from functools import lru_cache, reduce
from typing import Any, Callable, Mapping, Sequence

import mpmath
import sympy as sp
from sympy import Basic, Expr, HadamardPower, HadamardProduct, MatAdd, MatMul, MatrixSymbol, Symbol
from sympy.matrices.expressions import MatrixExpr, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix

from derive.derived.formulas import entrywise, loss_slope, short_output_delta, slope_by_hand, used, weight_gradient
from derive.model.network import Network, per_kind
from derive.numeric.arithmetic import Number, Point, walk

L = Symbol("L", integer=True, positive=True)        # the output layer
LAYER = Symbol("l", integer=True, positive=True)
K = Symbol("k", integer=True, positive=True)
WIDTH = sp.IndexedBase("n", integer=True, positive=True)


class Layers(Enum):
    """The layers an equation is written for, and the index it is written with."""

    OUTPUT = "output"
    HIDDEN = "hidden"
    EVERY = "every"
    CLOSED = "closed"           # every layer k, the recursion unrolled


@dataclass(frozen=True)
class Family:
    """A quantity every layer has (W^(l), δ^(l), …); ``latex`` has {l} where the layer goes."""

    plain: str
    latex: str
    meaning: str
    weights: bool = False       # shaped like the layer's weight matrix (else one entry per unit)
    bias: bool = False          # shaped like the layer's bias (1×1 when shared)


W = Family("W", r"W^{{({l})}}", "weights of layer l", weights=True)
DW = Family("de/dW", r"\frac{{\partial e}}{{\partial W^{{({l})}}}}", "one sample's derivative for the weights of layer l",
            weights=True)
DW_BATCH = Family("dE/dW", r"\frac{{\partial E}}{{\partial W^{{({l})}}}}", "the batch's derivative for the weights of "
                  "layer l", weights=True)
B = Family("b", r"\mathbf{{b}}^{{({l})}}", "biases of layer l", bias=True)
DB = Family("de/db", r"\frac{{\partial e}}{{\partial \mathbf{{b}}^{{({l})}}}}", "one sample's derivative for the biases "
            "of layer l", bias=True)
# a bias shared by the units of a layer is one number: a scalar, spread over the units by 1
SHARED_B = Family("b", r"b^{{({l})}}", "bias shared by the units of layer l (one number)", bias=True)
SHARED_DB = Family("de/db", r"\frac{{\partial e}}{{\partial b^{{({l})}}}}", "one sample's derivative for the shared "
                   "bias of layer l", bias=True)
Z = Family("z", r"\mathbf{{z}}^{{({l})}}", "net inputs of layer l")
A = Family("a", r"\mathbf{{a}}^{{({l})}}", "activations of layer l (a^(0) = x)")
DELTA = Family("delta", r"\boldsymbol{{\delta}}^{{({l})}}", "error signals ∂e/∂z of layer l")
FPRIME = Family("f'", "", "slopes of layer l's activation at its net inputs")
ONES = Family("1", r"\mathbf{{1}}", "vector of ones, one per unit of layer l")
DEDA = Family("de/da", r"\frac{{\partial e}}{{\partial \mathbf{{a}}^{{({l})}}}}", "derivative of one sample's loss "
              "for the outputs")
TARGET = Family("y", r"\mathbf{{y}}", "targets of one sample")


class LayerProduct(MatrixExpr):
    """An ordered product over layers, printed ∏_{l = first, …, last} body (written out when checked)."""

    def __new__(cls, body: MatrixExpr, first: Expr, last: Expr, rows: Expr, cols: Expr):
        return super().__new__(cls, body, first, last, rows, cols)

    @property
    def shape(self):
        return self.args[3], self.args[4]

    def _derive_latex(self, printer) -> str:
        body, first, last = self.args[:3]
        return (rf"\left(\prod_{{l = {printer._print(first)},\, \dots,\, {printer._print(last)}}} "
                rf"{printer._print(body)}\right)")


class SampleSum(MatrixExpr):
    """Σ_{n=1}^{N} of one sample's matrix, printed only (checked as the sum of the samples' values)."""

    def __new__(cls, term: MatrixExpr):
        return super().__new__(cls, term)

    @property
    def shape(self):
        return self.args[0].shape

    def _derive_latex(self, printer) -> str:
        return rf"\sum_{{n=1}}^{{N}} {printer._print(self.args[0])}"


@dataclass
class Writer:
    """Writes the matrices of an equation at a symbolic layer (to print) or a concrete one (to check).

    A concrete writer remembers which quantity of which layer every matrix symbol stands for
    (``where``), so the checker can put this network's numbers in.
    """

    net: Network
    concrete: bool
    names: dict[Basic, str] = field(default_factory=dict)
    where: dict[MatrixSymbol, tuple[Family, int]] = field(default_factory=dict)
    used: dict[str, Family] = field(default_factory=dict)      # latex → the family it writes, in order
    bias: str | None = None     # at a symbolic layer of a network whose layers' biases differ: the kind written

    def kind(self, l: Expr) -> str:
        """The bias of layer l: "none", "neuron" or "shared"."""
        kinds = self.net.spec.bias
        if self.concrete:
            return kinds.of(int(l) - 1)
        return self.bias or kinds.uniform or "neuron"

    @property
    def row(self) -> bool:
        return self.net.spec.convention.rows

    @property
    def top(self) -> Expr:
        return sp.Integer(self.net.spec.depth) if self.concrete else L

    def width(self, l: Expr) -> Expr:
        return sp.Integer(self.net.spec.layers[int(l)]) if self.concrete else WIDTH[l]

    def shape(self, family: Family, l: Expr) -> tuple[Expr, Expr]:
        n = self.width(l)
        if family.weights:
            m = self.width(l - 1)
            return (m, n) if self.net.spec.convention.stored_in_out else (n, m)
        if family.bias and self.kind(l) == "shared":
            return sp.S.One, sp.S.One
        return (sp.S.One, n) if self.row else (n, sp.S.One)

    def m(self, family: Family, l: Expr) -> MatrixSymbol:
        """The matrix of ``family`` at layer l, named for the printer and remembered for the values."""
        l = sp.sympify(l)
        if family is A and l == 0:
            symbol, latex = MatrixSymbol("x", *self.shape(A, l)), r"\mathbf{x}"
        elif family is TARGET:          # shaped like the layer's activations, one vector (not one per layer)
            symbol, latex = MatrixSymbol("y", *self.shape(A, l)), r"\mathbf{y}"
        else:
            label = int(l) if self.concrete else l      # the same name, without SymPy's printer
            symbol, latex = MatrixSymbol(f"{family.plain}({label})", *self.shape(family, l)), ""
        if self.concrete:       # checked in numbers, never printed: no LaTeX (a tenth of the time to write it)
            self.where[symbol] = (family, int(l))
            return symbol
        latex = latex or self.latex(family, l)
        self.names[symbol] = latex
        self.used.setdefault(latex, family)
        return symbol

    def latex(self, family: Family, l: Expr) -> str:
        if family is FPRIME:
            return rf"{self.slope_name(l)}\left(\mathbf{{z}}^{{({sp.latex(l)})}}\right)"
        return family.latex.format(l=sp.latex(l))

    def slope_name(self, l: Expr) -> str:
        """σ′ when every layer the formula can stand for has the same activation, f′_l otherwise."""
        acts = self.net.spec.activations
        if self.concrete:
            return self.net.activation(int(l) - 1).latex + "'"
        meant = {acts[-1]} if l == L else set(acts[:-1])
        if len(meant) == 1:
            return self.net.activation(acts.index(meant.pop())).latex + "'"
        return rf"f_{{{sp.latex(l)}}}'"

    def linear(self, l: Expr) -> bool:
        """Every layer l can stand for is linear: its slope is 1, so the formulas leave ⊙ f′ and diag(f′) out."""
        depth = self.net.spec.depth
        meant = [depth - 1] if l == self.top else range(depth - 1)
        return bool(meant) and all(self.net.activation(i).identity for i in meant)      # the registry's own fact

    def times(self, left: MatrixExpr, right: MatrixExpr) -> MatrixExpr:
        """left · right in the column convention; right · left in the row one (every product transposed).

        The printed product is SymPy's, made canonical at its own level (nested products flattened, scalars in
        front); the checked one is the same product as it stands. Neither goes into the factors (doit's deep
        walk asked SymPy's assumptions whether each diag(f′) is diagonal: loading their handlers was a fifth of
        a small network's first document, and the printed text is the same).
        """
        factors = (right, left) if self.row else (left, right)
        return MatMul(*factors) if self.concrete else MatMul(*factors).doit(deep=False)

    def weights(self, l: Expr) -> MatrixExpr:
        """W^(l) as the column convention's formulas use it: W^(l)ᵀ where it is stored input × output."""
        return used(self.net.spec.convention, self.m(W, l))


    def chain(self, k: Expr) -> MatrixExpr | None:
        """The factors from δ^(L) down to δ^(k): diag(f′_l(z^(l))) W^(l+1)ᵀ for l = k … L − 1; None when k = L."""
        def factor(l: Expr) -> MatrixExpr:
            if self.linear(l):          # diag(1) is the identity
                return self.weights(l + 1).T
            return self.times(DiagMatrix(self.m(FPRIME, l)), self.weights(l + 1).T)

        if not self.concrete:
            rows, cols = (self.width(L), self.width(k)) if self.row else (self.width(k), self.width(L))
            first, last = (L - 1, k) if self.row else (k, L - 1)
            return LayerProduct(factor(LAYER), first, last, rows, cols)
        top = self.net.spec.depth
        order = range(top - 1, int(k) - 1, -1) if self.row else range(int(k), top)
        factors = [factor(sp.Integer(l)) for l in order]
        return sp.MatMul(*factors) if len(factors) > 1 else (factors[0] if factors else None)

    def output(self, family: Family) -> MatrixSymbol:
        """A quantity of the output layer."""
        return self.m(family, self.top)


@dataclass(frozen=True)
class GeneralEquation:
    """lhs = rhs (and = each further form) at every layer of ``layers``, written by ``build``."""

    key: str                    # forward, upstream, output, hidden, weights, bias, closed, batch
    meaning: str
    layers: Layers
    build: Callable[[Writer, Expr], tuple[MatrixExpr, ...]]

    bias: str | None = None     # where the layers' biases differ: the kind this equation is written for
    only: tuple[int, ...] = ()  # then the layers (from 1) that have it

    def at(self, writer: Writer, l: Expr | None = None) -> tuple[MatrixExpr, ...]:
        index = {Layers.OUTPUT: writer.top, Layers.CLOSED: K}.get(self.layers, LAYER) if l is None else l
        writer.bias = self.bias
        return self.build(writer, index)

    def concrete_layers(self, depth: int) -> Sequence[int]:
        if self.only:
            return self.only
        return {Layers.OUTPUT: range(depth, depth + 1), Layers.HIDDEN: range(1, depth)}.get(
            self.layers, range(1, depth + 1))


def linear_slopes(net: Network) -> tuple[bool, bool]:
    """Whether the hidden layers' and the output layer's slopes are left out of the formulas (linear: 1)."""
    writer = Writer(net, concrete=False)
    return writer.linear(LAYER), writer.linear(L)


@per_kind
def written(net: Network, eq: GeneralEquation) -> tuple[Writer, tuple[MatrixExpr, ...]]:
    """``eq`` at a symbolic layer and the writer that named its matrices, once per kind of network: the general
    section prints it, the notation table lists its symbols and the checks count its forms."""
    writer = Writer(net, concrete=False)
    return writer, eq.at(writer)


# -- a concrete equation in numbers -------------------------------------------------------------

Grid = list[list[Number]]       # a matrix of numbers, row by row: exact Fractions or mpmath floats


def explicit(expr: MatrixExpr, table: Mapping[MatrixSymbol, Grid], scalars: Point) -> Grid:
    """A concrete layer's matrix expression at the numbers of ``table`` (its scalars, 1/N, at ``scalars``'), in
    Fractions where every number it is made of is exact and in mpmath at the caller's working precision otherwise.

    Each entry is worked out as SymPy's arithmetic of the entries would (the check did that with SymPy's matrices,
    most of its time): 0 · ∞ is nan, 1/0 is ∞ (a formula a saturated unit leaves undefined, which the check counts
    as unevaluable). Products are taken from the end that holds a vector (the closed form's chain is matrix times
    vector at every layer, n² each) and a diagonal matrix scales rows or columns.
    """
    if isinstance(expr, MatrixSymbol):
        return table[expr]
    rule = _EXPLICIT.get(type(expr))
    if rule is None:
        raise AssertionError(f"no rule to evaluate a {type(expr).__name__} in numbers")
    return rule(expr, table, scalars)


def spread(expr: MatrixExpr, table: Mapping[MatrixSymbol, Grid], scalars: Point) -> Grid:
    """``arithmetic.propagated`` for a matrix expression, entry by entry: how far each entry moves, to first order,
    when every number it is made of moves by one part in 10^d (in units of 10^−d), and never less than the entry.

    A sum adds its terms' spreads (where nearly equal terms cancel, the scale their inputs' rounding reaches the
    entry at); a product weighs each factor's by the others' magnitudes; an entrywise power b^k is |k b^(k−1)| times
    its base's, so that a division by a difference of nearly equal numbers (bce's 1/(a(1 − a)) beside a saturated
    unit) grows as the quotient does: the absolute values of its terms, the measure before, made it 1 and refused a
    true formula there. Made only where an entry misses the relative test."""
    if isinstance(expr, MatrixSymbol):
        return magnitudes(table[expr])
    rule = _SPREAD.get(type(expr))
    if rule is None:
        raise AssertionError(f"no rule for the spread of a {type(expr).__name__}")
    return rule(expr, table, scalars)


def _spread_product(factors: Sequence[tuple[Grid, Grid]], multiply: Callable[[Grid, Grid], Grid]) -> Grid:
    """Σ_i |F_1| ⋯ spread(F_i) ⋯ |F_n| for factors given as (magnitude, spread), ``multiply`` the product."""
    terms = []
    for i in range(len(factors)):
        grids = [m for _, m in factors[:i]] + [factors[i][1]] + [m for m, _ in factors[i + 1:]]
        terms.append(reduce(multiply, grids))
    return _sum(terms)


def _spread_matmul(expr: MatMul, table: Mapping[MatrixSymbol, Grid], scalars: Point) -> Grid:
    scale: Number = Fraction(1)
    factors = []
    for arg in _factors(expr):
        if arg.is_Matrix:
            factors.append((magnitudes(explicit(arg, table, scalars)), spread(arg, table, scalars)))
        else:
            scale = _times(scale, abs(walk(arg, scalars)))      # an exact scalar (1/N): no spread of its own
    out = _spread_product(factors, _matmul)
    return out if scale == 1 else [[_times(scale, x) for x in row] for row in out]


def _spread_entrywise(expr: HadamardProduct, table: Mapping[MatrixSymbol, Grid], scalars: Point) -> Grid:
    factors = [(magnitudes(explicit(a, table, scalars)), spread(a, table, scalars)) for a in expr.args]
    return _spread_product(factors, lambda x, y: _entrywise_product([x, y]))


def _spread_power(expr: HadamardPower, table: Mapping[MatrixSymbol, Grid], scalars: Point) -> Grid:
    k = int(expr.exp)
    base, moved = explicit(expr.base, table, scalars), spread(expr.base, table, scalars)
    return [[max(abs(_power(b, k)), _times(abs(k) * abs(_power(b, k - 1)), m)) for b, m in zip(row, spreads)]
            for row, spreads in zip(base, moved)]


def _transposed(m: Grid) -> Grid:
    return [list(column) for column in zip(*m)]


def magnitudes(m: Grid) -> Grid:
    """|x| entry by entry."""
    return [[abs(x) for x in row] for row in m]


def _add(x: Number, y: Number) -> Number:
    if isinstance(x, Fraction) and isinstance(y, Fraction):
        return x + y
    return _real(x) + _real(y)


def _times(x: Number, y: Number) -> Number:
    if isinstance(x, Fraction) and isinstance(y, Fraction):
        return x * y
    return _real(x) * _real(y)          # mpmath's 0 · ∞ is nan, as SymPy's Mul


def _real(x: Number) -> mpmath.mpf:
    """``as_mpf``, each exact number (a weight, an input) converted once at each precision."""
    return _converted(x.numerator, x.denominator, mpmath.mp.prec) if isinstance(x, Fraction) else x


@lru_cache(maxsize=4096)
def _converted(p: int, q: int, prec: int) -> mpmath.mpf:
    with mpmath.workprec(prec):
        return mpmath.mpf(p) / q


def _power(x: Number, k: int) -> Number:
    if x == 0 and k < 0:
        return mpmath.inf               # SymPy's 1/0 is zoo, which no check compares
    return x ** k


def _matmul(left: Grid, right: Grid) -> Grid:
    """Exact where both matrices are; else each entry mpmath's dot product, rounded once (its 0 · ∞ is nan too)."""
    if len(left[0]) != len(right):
        raise AssertionError(f"a product of {len(left)}×{len(left[0])} and {len(right)}×{len(right[0])} matrices")
    columns = list(zip(*right))
    if _exact(left) and _exact(right):
        return [[sum(map(operator.mul, row, column), Fraction(0)) for column in columns] for row in left]
    rows, columns = [list(map(_real, row)) for row in left], [list(map(_real, column)) for column in columns]
    return [[mpmath.fdot(row, column) for column in columns] for row in rows]


def _exact(m: Grid) -> bool:
    return all(isinstance(x, Fraction) for row in m for x in row)


def _product(expr: MatMul, table: Mapping[MatrixSymbol, Grid], scalars: Point) -> Grid:
    scalar: Number = Fraction(1)
    factors = []
    for arg in _factors(expr):
        if arg.is_Matrix:
            factors.append(arg)
        else:
            scalar = _times(scalar, walk(arg, scalars))
    values = [(explicit(m.args[0], table, scalars), True) if isinstance(m, DiagMatrix)
              else (explicit(m, table, scalars), False) for m in factors]
    if factors[-1].shape[1] == 1 or factors[0].shape[0] != 1:      # a column vector last, or no row vector first
        out = _dense(*values[-1])
        for m, diagonal in reversed(values[:-1]):
            out = _scaled(out, m, rows=True) if diagonal else _matmul(m, out)
    else:
        out = _dense(*values[0])
        for m, diagonal in values[1:]:
            out = _scaled(out, m, rows=False) if diagonal else _matmul(out, m)
    return out if scalar == 1 else [[_times(scalar, x) for x in row] for row in out]


def _factors(expr: MatMul) -> list[Expr]:
    """A product's factors, nested products flattened."""
    return [f for arg in expr.args for f in (_factors(arg) if isinstance(arg, MatMul) else [arg])]


def flat(m: Grid) -> list[Number]:
    """The entries row by row."""
    return [x for row in m for x in row]


def _dense(m: Grid, diagonal: bool) -> Grid:
    return _diagonal(m) if diagonal else m


def _diagonal(m: Grid) -> Grid:
    """diag of a row or column vector, with exact zeros off the diagonal."""
    entries = flat(m)
    return [[x if i == j else Fraction(0) for j in range(len(entries))] for i, x in enumerate(entries)]


def _scaled(m: Grid, by: Grid, rows: bool) -> Grid:
    """diag(by) · m (``rows``) or m · diag(by): each row (column) of m times its entry of ``by``."""
    scale = flat(by)
    if rows:
        return [[_times(s, x) for x in row] for s, row in zip(scale, m)]
    return [[_times(x, s) for x, s in zip(row, scale)] for row in m]


def _entrywise_product(matrices: Sequence[Grid]) -> Grid:
    """The entrywise product, each entry the product of its factors in order: 0 · ∞ is nan, as in SymPy's Mul
    (where Matrix.multiply_elementwise skips a 0 and gives 0)."""
    return [[reduce(_times, entries) for entries in zip(*rows)] for rows in zip(*matrices)]


def _sum(matrices: Sequence[Grid]) -> Grid:
    return [[reduce(_add, entries) for entries in zip(*rows)] for rows in zip(*matrices)]


def add(x: Grid, y: Grid) -> Grid:
    """The sum of two matrices of numbers, entry by entry."""
    return _sum([x, y])


_EXPLICIT: dict[type, Callable[[Any, Mapping[MatrixSymbol, Grid], Point], Grid]] = {
    MatMul: _product,
    MatAdd: lambda e, t, s: _sum([explicit(a, t, s) for a in e.args]),
    HadamardProduct: lambda e, t, s: _entrywise_product([explicit(a, t, s) for a in e.args]),
    HadamardPower: lambda e, t, s: [[_power(x, int(e.exp)) for x in row] for row in explicit(e.base, t, s)],
    Transpose: lambda e, t, s: _transposed(explicit(e.arg, t, s)),
    DiagMatrix: lambda e, t, s: _diagonal(explicit(e.args[0], t, s)),
}

_SPREAD: dict[type, Callable[[Any, Mapping[MatrixSymbol, Grid], Point], Grid]] = {
    MatMul: _spread_matmul,
    MatAdd: lambda e, t, s: _sum([spread(a, t, s) for a in e.args]),
    HadamardProduct: _spread_entrywise,
    HadamardPower: _spread_power,
    Transpose: lambda e, t, s: _transposed(spread(e.arg, t, s)),
    DiagMatrix: lambda e, t, s: _diagonal(spread(e.args[0], t, s)),
}


# -- the equations ---------------------------------------------------------------------------

def _forward(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    product = w.times(w.weights(l), w.m(A, l - 1))
    if w.kind(l) == "none":
        return w.m(Z, l), product
    shared = w.kind(l) == "shared"
    b = w.m(SHARED_B if shared else B, l)
    if shared:
        b = w.times(w.m(ONES, l), b)
    return w.m(Z, l), sp.MatAdd(product, b, evaluate=False)


def _hidden_delta(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    spread = w.times(w.weights(l + 1).T, w.m(DELTA, l + 1))
    if w.linear(l):
        return w.m(DELTA, l), spread
    return w.m(DELTA, l), sp.HadamardProduct(spread, w.m(FPRIME, l), evaluate=False)


def _weight_gradient(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    return w.m(DW, l), weight_gradient(w.net.spec.convention, w.m(A, l - 1), w.m(DELTA, l))


def _bias_gradient(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    delta = w.m(DELTA, l)
    if w.kind(l) == "shared":
        return w.m(SHARED_DB, l), w.times(w.m(ONES, l).T, delta)
    return w.m(DB, l), delta


def _closed(w: Writer, k: Expr) -> tuple[MatrixExpr, ...]:
    chain, last = w.chain(k), w.output(DELTA)
    return w.m(DELTA, k), (last if chain is None else w.times(chain, last))


def batch_sum(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    term = w.m(DW, l)
    if not w.concrete:      # the sample's own e_n: Σ_n ∂e_n/∂W^(l)
        w.names[term] = w.names[term].replace(r"\partial e}", r"\partial e_{n}}")
        return w.m(DW_BATCH, l), SampleSum(term)
    return w.m(DW_BATCH, l), term


def _entrywise(w: Writer, e: Expr, o: Symbol, y: Symbol) -> MatrixExpr:
    return entrywise(e, {o: w.output(A), y: w.output(TARGET)}, lambda: w.output(ONES))


def _upstream(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    _, o, y = loss_slope(w.net)
    return w.output(DEDA), _entrywise(w, slope_by_hand(w.net), o, y)


def _output_delta(w: Writer, l: Expr) -> tuple[MatrixExpr, ...]:
    """δ^(L) = ∂e/∂a ⊙ f′(z), or the softmax's Jacobian times ∂e/∂a; then its short form, where there is one."""
    act = w.net.activation(w.net.spec.depth - 1)
    if w.linear(w.top):
        forms: list[MatrixExpr] = [w.output(DEDA)]
    elif act.elementwise:
        forms = [sp.HadamardProduct(w.output(DEDA), w.output(FPRIME), evaluate=False)]
    else:
        a = w.output(A)
        jacobian = sp.MatAdd(DiagMatrix(a), -(a.T * a if w.row else a * a.T), evaluate=False)
        forms = [w.times(jacobian, w.output(DEDA))]
    short = short_output_delta(w.net)
    if short is not None:
        scalar, o, y = short
        forms.append(_entrywise(w, scalar, o, y))
    return (w.output(DELTA), *forms)


BIAS_WORDS = {"none": "layers without biases", "neuron": "layers with one bias per unit",
              "shared": "layers with one bias shared by their units"}


def _by_bias(net: Network, eq: GeneralEquation) -> list[GeneralEquation]:
    """``eq`` as it is, or where the layers' biases differ, once for each kind with the layers that have it."""
    kinds = net.spec.bias
    if kinds.uniform is not None:
        return [eq]
    out = []
    for kind in dict.fromkeys(kinds.kinds):
        layers = tuple(l + 1 for l, k in enumerate(kinds.kinds) if k == kind)
        meaning = (f"{eq.meaning}, {BIAS_WORDS[kind]}" if eq.key == "forward" else
                   "the shared bias's gradient: the sum of the layer's δ" if kind == "shared" else eq.meaning)
        out.append(replace(eq, meaning=meaning, bias=kind, only=layers))
    return out


def general_equations(net: Network) -> tuple[GeneralEquation, ...]:
    """The equations of backpropagation for a network of this kind at any depth, in the order a lecture writes them."""
    equations = [*_by_bias(net, GeneralEquation("forward", "the net inputs", Layers.EVERY, _forward)),
                 GeneralEquation("upstream", "the derivative of one sample's loss for the outputs", Layers.OUTPUT, _upstream),
                 GeneralEquation("output", "the error signal δ of the output layer", Layers.OUTPUT, _output_delta)]
    if net.spec.depth > 1:
        equations.append(GeneralEquation("hidden", "the error signal δ of a hidden layer, from the layer above", Layers.HIDDEN,
                                         _hidden_delta))
    equations.append(GeneralEquation("weights", "the weights' gradient, from the layer's δ", Layers.EVERY, _weight_gradient))
    if net.spec.bias.any:
        what = ("the shared bias's gradient: the sum of the layer's δ" if net.spec.bias.uniform == "shared"
                else "the biases' gradient")
        equations += [eq for eq in _by_bias(net, GeneralEquation("bias", what, Layers.EVERY, _bias_gradient))
                      if eq.bias != "none"]
    if net.spec.depth > 1:
        equations.append(GeneralEquation("closed", "the recursion unrolled: δ of layer k as an ordered product",
                                         Layers.CLOSED, _closed))
    if net.spec.samples > 1:
        equations.append(GeneralEquation("batch", "the batch sums the samples", Layers.EVERY, batch_sum))
    return tuple(equations)
