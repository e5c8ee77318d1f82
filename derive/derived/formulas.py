"""Layer-wise views of the derivation: the δ recursion, its matrix form with shapes, the general formula."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import sympy as sp
from sympy import (
    Basic,
    Expr,
    HadamardPower,
    HadamardProduct,
    ImmutableMatrix,
    MatAdd,
    MatMul,
    MatrixSymbol,
    Rational,
    Symbol,
)
from sympy.matrices.expressions import MatrixExpr, Transpose
from sympy.matrices.expressions.diagonal import DiagMatrix

from derive.model.backprop import Derivation
from derive.model.convention import Convention
from derive.model.network import Network, per_kind
from derive.model.notation import Name
from derive.model.registry import ACTIVATIONS, LOSSES, softmax
from derive.model.registry import activation as activation_entry
from derive.numeric.rule import N
from derive.numeric.values import Step, digits, exact

# == 1. the layer-wise recursion, read off the derivation ===================================

@dataclass(frozen=True)
class UnitDelta:
    """δ of one unit as the engine derives it, and the same δ with ∂E/∂a written out."""

    z: Symbol
    a: Symbol
    delta: Symbol               # the symbol δ_j (= ∂E/∂z_j)
    rule: Expr                  # δ_j = ∂E/∂a_j · f'(z_j); softmax: Σ_i ∂E/∂a_i · ∂a_i/∂z_j
    upstream: Symbol            # the symbol ∂E/∂a_j
    upstream_rule: Expr         # output layer: ∂E/∂o from the loss; hidden: Σ_m δ_m w_mj
    recursion: Expr             # rule with the layer's ∂E/∂a replaced by their upstream_rule
    short: Expr | None = None   # an output unit's δ in its own o and y, where that is true (softmax + CE: (o − y)/N)

    @property
    def forms(self) -> tuple[Expr, ...]:
        """Every form the recursion section prints of this δ, each equal to it."""
        return tuple(dict.fromkeys(f for f in (self.rule, self.recursion, self.short) if f is not None))


@dataclass(frozen=True)
class ParameterGradient:
    """∂E/∂p of one weight or bias from δ and the activation below (one sample's contribution)."""

    parameter: Symbol
    gradient: Symbol            # the symbol ∂E/∂p
    rule: Expr                  # δ_j a_k for a weight, δ_j for a bias, Σ_j δ_j for a shared bias


@dataclass(frozen=True)
class LayerRecursion:
    """One layer's δ and parameter gradients; ``layer`` is 1-based, as W1, b1 in the spec."""

    layer: int
    activation: str
    output: bool
    units: tuple[UnitDelta, ...]
    weights: tuple[ParameterGradient, ...]     # target unit first, as Network.weights
    biases: tuple[ParameterGradient, ...]      # one per unit, one when shared, none


def layer_recursion(d: Derivation) -> tuple[LayerRecursion, ...]:
    """The derivation organised by layer, output layer first (the order it is computed in).

    >>> from derive import solve
    >>> [r.layer for r in layer_recursion(solve("sigmoid-222").derivation)]
    [2, 1]
    """
    return tuple(_layer_recursion(d, l) for l in reversed(range(d.network.spec.depth)))


def _layer_recursion(d: Derivation, l: int) -> LayerRecursion:
    net = d.network
    upstream = {d.adjoint[a]: d.gradient[a] for a in net.activations[l]}

    def unrolled(z: Symbol, a: Symbol) -> Expr:
        # ∂E/∂a written out, still in front: (o − y)·o(1 − o), as the rule ∂E/∂o·o(1 − o) reads
        rule = d.gradient[z]
        if rule.is_Mul and d.adjoint[a] in rule.args:
            return sp.Mul(d.gradient[a], rule / d.adjoint[a], evaluate=False)
        return rule.xreplace(upstream)

    units = tuple(UnitDelta(z, a, d.adjoint[z], d.gradient[z], d.adjoint[a], d.gradient[a], unrolled(z, a),
                            unit_short_delta(net, j) if l == net.spec.depth - 1 else None)
                  for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])))

    def gradients(ps) -> tuple[ParameterGradient, ...]:
        return tuple(ParameterGradient(p, d.adjoint[p], d.gradient[p]) for p in ps)

    weights = gradients(w for row in net.weights[l] for w in row)
    biases = gradients(dict.fromkeys(net.biases[l]))
    return LayerRecursion(l + 1, net.spec.activations[l], l == net.spec.depth - 1, units, weights, biases)


# == 1b. the output layer's δ in its shortest true form =========================================

J = Symbol("J", integer=True, positive=True)        # outputs


@per_kind
def loss_slope(net: Network) -> tuple[Expr, Symbol, Symbol]:
    """∂e/∂o of one output for one sample, with N and J symbolic: 2(o − y)/(N J) for MSE; once per kind of network
    (the backward pass, the short δ and every general equation of the output layer ask for it)."""
    o, y = Symbol("o"), Symbol("y")
    rule = net.spec.rule
    return sp.factor_terms(sp.cancel(sp.diff(rule.scale(N, J) * rule.term(o, y), o))), o, y


@per_kind
def slope_by_hand(net: Network) -> Expr:
    """``loss_slope``'s ∂e/∂o as a hand derivation writes it (``as_by_hand``: SymPy's factor), once per kind: the
    short δ and the general equations' printed and checked forms ask for it."""
    scalar, o, _ = loss_slope(net)
    return as_by_hand(scalar, o)


@per_kind
def short_output_delta(net: Network) -> tuple[Expr, Symbol, Symbol] | None:
    """δ^(L) of one unit in its own o and y alone, where the loss and the activation allow it; once per kind of
    network (every output unit, the recursion, the backward pass and the general equations ask for it).

    A sigmoid: 2(o − y) o(1 − o)/(N J) under MSE; under BCE σ′ cancels, (o − y)/(N J). A softmax
    under cross-entropy when every sample's targets sum to 1: (o − y)/N, the Jacobian's
    cross terms collapsing. None where ∂e/∂a ⊙ f′(z) is as short as it gets.
    """
    scalar, o, y = loss_slope(net)
    act = net.activation(net.spec.depth - 1)
    if act.elementwise:
        z = Symbol("z")
        # written in a alone (σ′ = a(1 − a)), δ shows where the loss's constant goes; under BCE σ′ cancels
        by_hand = slope_by_hand(net)
        written = by_hand * act.df(z, o)
        cancelled = sp.factor_terms(sp.cancel(written))
        # in reading order, ∂e/∂a first: 2/(N J) (a − y) ⊙ a ⊙ (1 − a)
        fused = cancelled if sp.count_ops(cancelled) < sp.count_ops(written) else _ordered_flat(
            by_hand, act.df(z, o))
        return (fused, o, y) if z not in fused.free_symbols and fused != scalar else None
    if not (act.sums_to_one and net.kind.targets_sum_to_one):     # one-hot rows, or probabilities
        return None
    fused = _softmax_unit(scalar, o, y, net.spec.layers[-1])
    return (fused.xreplace({Symbol("o1"): o, Symbol("y1"): y}), o, y) if fused is not None else None


def _ordered_flat(*factors: Expr) -> Expr:
    """One unevaluated product of the factors' own factors, each factor's sums last."""
    return sp.Mul(*(g for f in factors for g in _sums_last(f)), evaluate=False)


def _sums_last(f: Expr) -> tuple[Expr, ...]:
    """A product's factors as by hand, its sums last: a(1 − a), not (1 − a)a; anything else alone."""
    return tuple(sorted(f.args, key=lambda g: g.is_Add)) if f.is_Mul else (f,)


def unit_short_delta(net: Network, j: int) -> Expr | None:
    """``short_output_delta`` for output unit j of this network, N and J its own numbers."""
    short = short_output_delta(net)
    if short is None:
        return None
    scalar, o, y = short
    numbers = {N: sp.Integer(net.spec.samples), J: sp.Integer(net.spec.layers[-1])}
    return sp.factor_terms(scalar.xreplace({o: net.outputs[j], y: net.targets[j], **numbers}))   # (o − y)/2


def _softmax_unit(scalar: Expr, o: Symbol, y: Symbol, width: int) -> Expr | None:
    """Σ_i ∂e/∂o_i · o_i(δ_i1 − o_1) for unit 1 with y_2 = 1 − Σ_{i≠2} y_i, when it is c · (o_1 − y_1)."""
    if width < 2:
        return None
    os_, ys = sp.symbols(f"o1:{width + 1}"), sp.symbols(f"y1:{width + 1}")
    terms = (scalar.xreplace({o: os_[i], y: ys[i]}) * os_[i] * (int(i == 0) - os_[0]) for i in range(width))
    constrained = sp.Add(*terms).xreplace({ys[1]: 1 - sum(ys[i] for i in range(width) if i != 1)})
    c = sp.cancel(constrained / (os_[0] - ys[0]))
    return sp.factor_terms(c * (os_[0] - ys[0])) if not c.free_symbols - {N, J} else None


# == 2. the matrix form, for the whole batch, in the spec's convention ======================

@dataclass(frozen=True)
class Factor:
    """One matrix of an equation and its shape."""

    matrix: MatrixExpr
    rows: int
    cols: int


@dataclass(frozen=True)
class Equation:
    """lhs = rhs, with what it says in words."""

    lhs: Basic
    rhs: Basic
    meaning: str

    @property
    def factors(self) -> tuple[Factor, ...]:
        """Every matrix of lhs and rhs once, in reading order (empty for scalar equations)."""
        found: dict[MatrixExpr, None] = {}
        for expr in (self.lhs, self.rhs):
            _collect(expr, found)
        return tuple(Factor(m, int(m.shape[0]), int(m.shape[1])) for m in found)


def _collect(expr: Basic, found: dict) -> None:
    if isinstance(expr, MatrixSymbol) or (isinstance(expr, (Transpose, DiagMatrix))
                                          and isinstance(expr.args[0], MatrixSymbol)):
        found.setdefault(expr)
        return
    for arg in expr.args:
        _collect(arg, found)


@dataclass(frozen=True)
class Column:
    """One sample of a softmax output layer: its outputs a_n, ∂E/∂a_n and δ_n."""

    a: MatrixSymbol
    upstream: MatrixSymbol
    delta: MatrixSymbol


@dataclass(frozen=True)
class MatrixLayer:
    """The matrices of one layer (1-based ``layer``) and its forward and backward equations."""

    layer: int
    activation: str
    W: MatrixSymbol
    b: MatrixSymbol | None          # column/row vector ("neuron"), 1×1 ("shared"), or none
    below: MatrixSymbol             # A^(l−1); X for the first layer
    Z: MatrixSymbol
    A: MatrixSymbol
    f_Z: MatrixSymbol | None        # f applied to every entry of Z (softmax: to every sample); None if linear (A = Z)
    df_Z: MatrixSymbol | None       # f′ of every entry of Z; None for softmax, and if linear (its slope 1 drops out)
    Delta: MatrixSymbol
    dW: MatrixSymbol
    db: MatrixSymbol | None
    upstream: MatrixSymbol | None   # ∂E/∂A^(L), output layer only
    column: Column | None           # softmax output layer only
    forward: tuple[Equation, ...]   # Z = …, A = f(Z)
    backward: tuple[Equation, ...]  # [∂E/∂A^(L) = …,] Δ = …, ∂E/∂W = …, [∂E/∂b = …]


@dataclass(frozen=True, eq=False)
class MatrixForm:
    """Backpropagation for the whole batch as matrix equations whose shapes SymPy has checked.

    ``convention`` column: one column per sample, W^(l) is n_l×n_{l−1}; row: one row per
    sample, W^(l) is n_{l−1}×n_l; transposed: one column per sample, W^(l) is n_{l−1}×n_l and the
    equations use W^(l)ᵀ. ``layers`` runs from layer 1 to the output layer.
    """

    convention: Convention
    samples: int
    X: MatrixSymbol
    Y: MatrixSymbol
    ones: tuple[MatrixSymbol, ...]      # the all-ones vectors and matrices that appear
    layers: tuple[MatrixLayer, ...]
    names: dict[Basic, Name]

    @property
    def forward(self) -> tuple[Equation, ...]:
        return tuple(e for layer in self.layers for e in layer.forward)

    @property
    def backward(self) -> tuple[Equation, ...]:
        """Output layer first, as they are computed."""
        return tuple(e for layer in reversed(self.layers) for e in layer.backward)


def matrix_form(net: Network) -> MatrixForm:
    """The forward and backward pass of ``net`` as matrix equations for its batch of N samples.

    >>> from derive import solve
    >>> form = matrix_form(solve("sigmoid-451-batch").network)
    >>> [(str(f.matrix), f.rows, f.cols) for f in form.layers[1].backward[2].factors]
    [('dE/dW2', 5, 1), ('A1', 5, 5), ('Delta2.T', 5, 1)]
    """
    spec = net.spec
    row, N = spec.convention.rows, spec.samples
    names: dict[Basic, Name] = {}
    ones: dict[MatrixSymbol, None] = {}

    def matrix(key: str, shape: tuple[int, int], name: Name) -> MatrixSymbol:
        """A matrix by derive's own name ``key`` (what the checks and derive check refer to), printed as ``name``."""
        m = MatrixSymbol(key, *shape)
        names[m] = name
        return m

    def one(rows: int, cols: int = 1) -> MatrixSymbol:
        plain, latex = (f"1_{rows}", rf"\mathbf{{1}}_{{{rows}}}") if cols == 1 else \
            (f"1_{rows}x{cols}", rf"\mathbf{{1}}_{{{rows}\times {cols}}}")
        m = matrix(plain, (rows, cols), Name(latex, plain, f"{rows}×{cols} matrix of ones"))
        ones.setdefault(m)
        return m

    batch = (lambda n: (N, n)) if row else (lambda n: (n, N))
    X = matrix("X", batch(spec.layers[0]), net.notation.matrix("X"))
    Y = matrix("Y", batch(spec.layers[-1]), net.notation.matrix("Y"))
    symbols = []
    below = X
    for l in range(1, spec.depth + 1):
        symbols.append(_layer_symbols(net, l, below, matrix, batch))
        below = symbols[-1]["A"]
    layers = tuple(_matrix_layer(net, l, symbols, Y, matrix, one) for l in range(1, spec.depth + 1))
    return MatrixForm(spec.convention, N, X, Y, tuple(ones), layers, names)


def _layer_symbols(net: Network, l: int, below: MatrixSymbol, matrix, batch) -> dict[str, MatrixSymbol | None]:
    """Every matrix of layer l (1-based), keyed W1, b1, Z1, A1, Delta1, dE/dW1 … and named by the notation."""
    spec, act, names = net.spec, net.activation(l - 1), net.notation
    n, m = spec.layers[l], spec.layers[l - 1]
    w_shape = (m, n) if spec.convention.stored_in_out else (n, m)
    s: dict[str, MatrixSymbol | None] = {"below": below}
    s["W"] = matrix(f"W{l}", w_shape, names.matrix("W", l))
    s["dW"] = matrix(f"dE/dW{l}", w_shape, names.matrix_gradient("W", l))
    kind = spec.bias.of(l - 1)
    b_shape = (1, 1) if kind == "shared" else (1, n) if spec.convention.rows else (n, 1)
    s["b"] = None if kind == "none" else matrix(f"b{l}", b_shape, names.matrix("b", l))
    s["db"] = None if kind == "none" else matrix(f"dE/db{l}", b_shape, names.matrix_gradient("b", l))
    Z = names.matrix("Z", l)
    s["Z"] = matrix(f"Z{l}", batch(n), Z)
    s["A"] = matrix(f"A{l}", batch(n), names.matrix("A", l))
    # a linear layer's A is its Z, and its slope 1 drops out of Δ: no id(Z), no ⊙ id′(Z)
    s["f_Z"] = None if act.identity else matrix(f"{act.name}(Z{l})", batch(n), Name(
        rf"{act.latex}\left({Z.latex}\right)", f"{act.name}({Z.plain})",
        f"{act.name} of every {'entry' if act.elementwise else 'sample'} of {Z.plain}"))
    s["df_Z"] = None if act.identity or not act.elementwise else matrix(f"{act.name}'(Z{l})", batch(n), Name(
        rf"{act.latex}'\left({Z.latex}\right)", f"{act.name}'({Z.plain})",
        f"derivative of {act.name} at every entry of {Z.plain}"))
    s["Delta"] = matrix(f"Delta{l}", batch(n), names.matrix("Delta", l))
    return s


def _matrix_layer(net: Network, l: int, symbols: list[dict], Y: MatrixSymbol, matrix, one) -> MatrixLayer:
    spec, names = net.spec, net.notation
    row, N, n, L = spec.convention.rows, spec.samples, spec.layers[l], spec.depth
    s = symbols[l - 1]
    e, z_name, delta_name = names.loss_matrix().plain, names.matrix("Z", l).plain, names.matrix("Delta", l).plain
    W, b, below, Z, A, Delta = used(spec.convention, s["W"]), s["b"], s["below"], s["Z"], s["A"], s["Delta"]

    # all-ones vectors spread a bias over the samples (and a shared one over the units); size 1 needs none
    samples = one(N) if N > 1 else None
    shared = spec.bias.of(l - 1) == "shared"
    units = one(n) if shared and n > 1 else None
    product = MatMul(below, W) if row else MatMul(W, below)
    if b is None:
        z_rhs: MatrixExpr = product
    else:
        spread = _product(samples, b, _T(units)) if row else _product(units, b, _T(samples))
        z_rhs = MatAdd(product, spread, evaluate=False)
    act = net.activation(l - 1)
    forward = (Equation(Z, z_rhs, f"net inputs of layer {l}, every sample at once"),
               Equation(A, s["f_Z"] if s["f_Z"] is not None else Z, f"activations of layer {l}: "
                        + ("softmax of each sample's net inputs" if not act.elementwise
                           else f"{act.name}, the net inputs themselves" if act.identity
                           else f"{act.name} of every entry")))

    backward: list[Equation] = []
    upstream = column = None
    if l == L:
        upstream = matrix(f"dE/dA{l}", A.shape, names.matrix_gradient("A", l))
        backward.append(Equation(upstream, _loss_gradient(net, A, Y, one),
                                 f"derivative of the loss, entry by entry ({e} sums over all samples)"))
        if not act.elementwise:
            column = _softmax_column(net, l, matrix)
            outer = column.a.T * column.a if row else column.a * column.a.T
            jacobian = MatAdd(DiagMatrix(column.a), -outer, evaluate=False)
            rhs = MatMul(column.upstream, jacobian) if row else MatMul(jacobian, column.upstream)
            jacobian_text = "diag(a_n) − a_nᵀ a_n" if row else "diag(a_n) − a_n a_nᵀ"
            backward.append(Equation(column.delta, rhs,
                                     f"δ of sample n ({'row' if row else 'column'} n of {delta_name}): the "
                                     f"softmax couples a sample's outputs, so its Jacobian {jacobian_text} takes "
                                     f"the place of f′({z_name})"))
        else:
            backward.append(Equation(Delta, _sloped(upstream, s["df_Z"]), f"δ of the output layer: ∂{e}/∂A"
                                     + (" (a linear layer's slope is 1)" if act.identity
                                        else " times f′(Z), entry by entry")))
    else:
        above = symbols[l]
        W_above = used(spec.convention, above["W"])
        spread = MatMul(above["Delta"], W_above.T) if row else MatMul(W_above.T, above["Delta"])
        backward.append(Equation(Delta, _sloped(spread, s["df_Z"]), f"δ of layer {l} from the δ of layer {l + 1}"
                                 + (" (a linear layer's slope is 1)" if act.identity
                                    else ", times f′(Z), entry by entry")))
    backward.append(Equation(s["dW"], weight_gradient(spec.convention, below, Delta),
                             f"gradient of the weights of layer {l}, summed over the samples"))
    if b is not None:
        db = _product(_T(samples), Delta, units) if row else _product(_T(units), Delta, samples)
        backward.append(Equation(s["db"], db, f"gradient of the bias{'' if shared else 'es'} "
                                              f"of layer {l}, summed over the samples"
                                              + (" and the units" if shared else "")))
    return MatrixLayer(l, spec.activations[l - 1], s["W"], b, below, Z, A, s["f_Z"], s["df_Z"], Delta, s["dW"], s["db"],
                       upstream, column, forward, tuple(backward))


def _sloped(upstream: MatrixExpr, df_Z: MatrixSymbol | None) -> MatrixExpr:
    """∂E/∂A ⊙ f′(Z), entry by entry; ∂E/∂A itself for a linear layer (no f′ to multiply by)."""
    return upstream if df_Z is None else HadamardProduct(upstream, df_Z, evaluate=False)


def used(convention: Convention, W: MatrixSymbol) -> MatrixExpr:
    """W^(l) as the column convention's equations use it (out × in): its transpose where it is stored in × out
    and the samples are columns (the row convention's products run the other way and use W as it is)."""
    return W.T if convention.uses_transpose else W


def weight_gradient(convention: Convention, below: MatrixExpr, Delta: MatrixExpr) -> MatrixExpr:
    """∂E/∂W^(l) in the shape W^(l) is stored: Aᵀ Δ (rows), Δ Aᵀ (columns), A Δᵀ (columns, W stored in × out)."""
    if convention.rows:
        return MatMul(below.T, Delta)
    return MatMul(below, Delta.T) if convention.uses_transpose else MatMul(Delta, below.T)


def _product(*factors: MatrixExpr | None) -> MatrixExpr:
    """The matrix product of the factors that are there, in the order given."""
    present = [f for f in factors if f is not None]
    return present[0] if len(present) == 1 else MatMul(*present, evaluate=False)


def _T(m: MatrixSymbol | None) -> MatrixExpr | None:
    return None if m is None else m.T


def _softmax_column(net: Network, l: int, matrix) -> Column:
    """Sample n's vectors, in layer notation (a^{(l)}_n), each said to be a row or column of the named matrix."""
    J, row, names = net.spec.layers[l], net.spec.convention.rows, net.notation
    shape, part = ((1, J), "row") if row else ((J, 1), "column")
    sup = f"^{{({l})}}_{{n}}"
    e, A, Delta = names.loss_matrix(), names.matrix("A", l).plain, names.matrix("Delta", l).plain
    return Column(
        matrix(f"a{l}_n", shape, Name(rf"\mathbf{{a}}{sup}", f"a{l}_n", f"sample n's outputs ({part} n of {A})")),
        matrix(f"dE/da{l}_n", shape, Name(rf"\frac{{\partial {e.latex}}}{{\partial \mathbf{{a}}{sup}}}",
                                          f"d{e.plain}/da{l}_n", f"{part} n of d{e.plain}/d{A}")),
        matrix(f"delta{l}_n", shape, Name(rf"\boldsymbol{{\delta}}{sup}", f"delta{l}_n", f"{part} n of {Delta}")))


def _loss_gradient(net: Network, A: MatrixSymbol, Y: MatrixSymbol, one) -> MatrixExpr:
    """∂E/∂A^(L): the loss's scalar derivative in o and y, lifted to whole matrices entry by entry."""
    spec = net.spec
    o, y = Symbol("o"), Symbol("y")
    rule = spec.rule
    scalar = sp.factor_terms(sp.cancel(sp.diff(rule.scale(spec.samples, spec.layers[-1]) * rule.term(o, y), o)))
    return entrywise(as_by_hand(scalar, o), {o: A, y: Y}, lambda: one(*A.shape))


def as_by_hand(e: Expr, o: Symbol) -> Expr:
    """(y − o)/(o(o − 1)) as (o − y)/(o(1 − o)): the error o − y on top, as the δ rule reads."""
    n, d = sp.fraction(sp.factor(e))
    if not (sp.diff(n, o).is_negative and d.is_Mul and any(f.is_Add for f in d.args)):
        return e
    flip = next(f for f in d.args if f.is_Add)
    return -n / sp.Mul(*(-f if f is flip else f for f in d.args))


def entrywise(e: Expr, table: Mapping[Symbol, MatrixSymbol], ones: Callable[[], MatrixSymbol]) -> MatrixExpr:
    """Read a scalar expression as the same expression of every entry: products become ∘."""
    if e in table:
        return table[e]
    if e.is_Add:    # a negative term never first: A − 1 and 1 − A, not −1 + A and −A + 1
        terms = sorted(e.args, key=lambda t: t.could_extract_minus_sign())
        return MatAdd(*(entrywise(t, table, ones) if t.free_symbols else t * ones() for t in terms), evaluate=False)
    if e.is_Mul:    # quotients last: (Y − A) ∘ A^∘−1
        coeff, factors = e.as_coeff_mul()
        constant = [f for f in factors if not f.free_symbols & set(table)]     # 1/N with a symbolic N
        coeff, factors = coeff * sp.Mul(*constant), tuple(f for f in factors if f not in constant)
        lifted = [entrywise(f, table, ones) for f in sorted(factors, key=lambda f: bool(f.is_Pow and f.exp.is_negative))]
        body = lifted[0] if len(lifted) == 1 else HadamardProduct(*lifted, evaluate=False)
        return body if coeff == 1 else MatMul(coeff, body, evaluate=False)
    if e.is_Pow and e.exp.is_Integer:
        return HadamardPower(entrywise(e.base, table, ones), e.exp)
    raise AssertionError(f"no entry-wise matrix form for {e}")


# -- the matrix form in numbers ---------------------------------------------------------------

def weight_matrix(net: Network, l: int) -> ImmutableMatrix:
    """The symbols of W^(l) (1-based l), laid out as the spec's convention writes the matrix."""
    W = ImmutableMatrix(net.weights[l - 1])
    return W.T if net.spec.convention.stored_in_out else W


def bias_matrix(net: Network, l: int) -> ImmutableMatrix | None:
    """The symbols of b^(l): a column (row) vector, 1×1 when shared, None without biases."""
    kind = net.spec.bias.of(l - 1)
    if kind == "none":
        return None
    b = ImmutableMatrix([[net.biases[l - 1][0]]] if kind == "shared" else [net.biases[l - 1]])
    return b if net.spec.convention.rows or kind == "shared" else b.T


def batch_matrix(net: Network, step: Step, symbols: Sequence[Symbol]) -> ImmutableMatrix:
    """The values of per-sample quantities (x, y, a layer's z or a) as one matrix of the batch."""
    M = ImmutableMatrix([[sample[s] for sample in step.samples] for s in symbols])
    return M.T if net.spec.convention.rows else M


def matrix_values(form: MatrixForm, net: Network, step: Step) -> dict[MatrixSymbol, ImmutableMatrix]:
    """Every matrix of ``form`` for the batch of ``step``, computed by matrix algebra alone.

    Only X, Y and the parameters are taken from the step; Z, A, f′(Z), Δ and the gradients come
    from the equations, so they are an independent check of the engine's per-unit chain rule.
    """
    # the digits the engine needed (more than 60 where a unit saturates, see values._sample)
    work = max(digits(v) for env in step.samples for v in env.values())
    values: dict[MatrixSymbol, ImmutableMatrix] = {
        form.X: batch_matrix(net, step, net.inputs), form.Y: batch_matrix(net, step, net.targets)}
    values.update((m, ImmutableMatrix.ones(*m.shape)) for m in form.ones)
    for layer in form.layers:
        values[layer.W] = weight_matrix(net, layer.layer).xreplace(step.parameters)
        if layer.b is not None:
            b = bias_matrix(net, layer.layer)
            if b is None:
                raise AssertionError(f"layer {layer.layer} has a bias matrix symbol but the spec no biases")
            values[layer.b] = b.xreplace(step.parameters)
        values[layer.Z] = _evaluate(layer.forward[0].rhs, values)
        _activate(net, layer, values, work)
    for layer in reversed(form.layers):
        for eq in layer.backward:
            if layer.column is not None and eq.lhs == layer.column.delta:
                values[layer.Delta] = _per_sample(eq.rhs, layer, layer.column, values,
                                                  net.spec.convention.rows)
            else:
                values[eq.lhs] = _evaluate(eq.rhs, values)
    return values


def values_of(form: MatrixForm | None, values: Mapping[MatrixSymbol, ImmutableMatrix],
              lhs: MatrixSymbol) -> tuple[ImmutableMatrix, ...]:
    """The values an equation of ``form`` ends with: its matrix, or for a softmax's δ_n each sample's column
    (row) of Δ, which the check compares whole; () where there are none."""
    if lhs in values or form is None:
        return (values[lhs],) if lhs in values else ()
    for layer in form.layers:
        if layer.column is not None and lhs == layer.column.delta:
            Delta, row = values[layer.Delta], form.convention.rows
            return tuple(Delta.row(n) if row else Delta.col(n) for n in range(form.samples))
    return ()


def _evaluate(expr: MatrixExpr, values: Mapping[MatrixSymbol, ImmutableMatrix]) -> ImmutableMatrix:
    return ImmutableMatrix(expr.xreplace(dict(values)).doit().as_explicit()).applyfunc(exact)


def _activate(net: Network, layer: MatrixLayer, values: dict, work: int) -> None:
    """A = f(Z) and f′(Z), entry by entry; softmax sample by sample."""
    Z, row = values[layer.Z], net.spec.convention.rows
    f = net.activation(layer.layer - 1)
    if f.identity:
        values[layer.A] = Z
        return
    if not f.elementwise:
        samples = [Z.row(n) if row else Z.col(n) for n in range(net.spec.samples)]
        cols = [ImmutableMatrix([exact(v, work) for v in softmax(list(z))]) for z in samples]
        A = ImmutableMatrix.hstack(*cols)
        values[layer.A] = values[layer.f_Z] = A.T if row else A
        return
    values[layer.A] = values[layer.f_Z] = Z.applyfunc(lambda z: exact(f.f(z), work))
    values[layer.df_Z] = ImmutableMatrix(*Z.shape, [exact(f.df(z, a), work) for z, a in zip(Z, values[layer.A])])


def _per_sample(rhs: MatrixExpr, layer: MatrixLayer, c: Column, values: dict, row: bool) -> ImmutableMatrix:
    """Δ^(L) of a softmax layer (``c`` is its one-sample column), one sample's Jacobian at a time."""
    A, G = values[layer.A], values[layer.upstream]
    take = (lambda M, n: M.row(n)) if row else (lambda M, n: M.col(n))
    samples = A.rows if row else A.cols
    parts = [_evaluate(rhs, {**values, c.a: take(A, n), c.upstream: take(G, n)}) for n in range(samples)]
    return ImmutableMatrix.vstack(*parts) if row else ImmutableMatrix.hstack(*parts)


# == 3. the general formula for a chain of L layers ==========================================

@dataclass(frozen=True)
class ChainGradient:
    """The general formula at a concrete depth L and layer k, in w_i, b_i, z_i, a_i, x, y, N."""

    delta: Expr
    weight: Expr
    bias: Expr


@dataclass(frozen=True, eq=False)
class VectorGradient:
    """The vector form at concrete widths and layer k: matrix products whose shapes SymPy checked."""

    delta: MatrixExpr
    weight: MatrixExpr
    bias: MatrixExpr
    names: dict[Basic, Name]


@dataclass(frozen=True, eq=False)
class GeneralFormula:
    """∂E/∂w_k and ∂E/∂b_k for a chain of L layers (one unit each), unrolled from the δ recursion.

    Scalar chain: z_i = w_i a_{i−1} + b_i, a_i = f(z_i), a_0 = x; the output layer L uses
    ``output``'s f. Equations hold for one sample; with N samples E sums them. The vector form
    (``vector_*``) is the same recursion for layers of any width, with diag(f′) and transposes.
    ``symbols`` holds every symbol, IndexedBase and function by its plain name (w, a, f', W, …).
    """

    activation: str | None          # f of the hidden layers; None: a generic f
    output: str | None              # f of the output layer
    loss: str | None                # None: ∂E/∂a_L stays a symbol
    L: Symbol
    k: Symbol
    i: Symbol
    N: Symbol
    loss_gradient: Equation                 # ∂E/∂a_L = …
    recursion: tuple[Equation, ...]         # δ_L, δ_k from δ_{k+1}, ∂E/∂w_k, ∂E/∂b_k
    closed: tuple[Equation, ...]            # δ_k, ∂E/∂w_k, ∂E/∂b_k with the recursion unrolled
    vector_recursion: tuple[Equation, ...]  # the same four for vectors
    vector_closed: tuple[Equation, ...]     # the same three for vectors
    symbols: dict[str, Basic]
    names: dict[Basic, Name]

    def instantiate(self, L: int, k: int) -> ChainGradient:
        """The closed forms at depth L for layer k: the product written out, a_0 written x.

        >>> general_formula("sigmoid", "half_sse").instantiate(2, 2).weight
        (1 - a[2])*(-y + a[2])*a[1]*a[2]
        """
        _check_layer(L, k)
        a0 = {self.symbols["a"][0]: self.symbols["x"]}
        delta, weight, bias = (_products(eq.rhs.subs({self.L: L, self.k: k})).xreplace(a0) for eq in self.closed)
        return ChainGradient(delta, weight, bias)

    def substitution(self, net: Network) -> dict[Expr, Expr]:
        """w_i, b_i, z_i, a_i, x, y, N of an instantiated formula → the symbols of a chain network."""
        spec, s = net.spec, self.symbols
        if any(n != 1 for n in spec.layers):
            raise ValueError(f"the general formula is for a chain of single units; got layers {list(spec.layers)}")
        out: dict[Expr, Expr] = {s["x"]: net.inputs[0], s["y"]: net.targets[0], self.N: sp.Integer(spec.samples)}
        for i in range(1, spec.depth + 1):
            out.update({s["w"][i]: net.weights[i - 1][0][0], s["z"][i]: net.nets[i - 1][0],
                        s["a"][i]: net.activations[i - 1][0], s["b"][i]: (net.biases[i - 1] or (sp.S.Zero,))[0]})
        return out

    def instantiate_vector(self, layers: Sequence[int], k: int) -> VectorGradient:
        """The vector closed forms for widths ``layers`` (input first), as shape-checked matrix products.

        >>> general_formula().instantiate_vector([2, 3, 1], 1).weight.shape
        (3, 2)
        """
        L = len(layers) - 1
        _check_layer(L, k)
        names: dict[Basic, Name] = {}
        delta, weight, bias = (_to_matrices(_products(eq.rhs.subs({self.L: L, self.k: k})), layers, names)
                               for eq in self.vector_closed)
        return VectorGradient(delta, weight, bias, names)


def _products(expr: Expr) -> Expr:
    """Write out the products with concrete bounds, and nothing else (∂E/∂a_L stays unevaluated)."""
    return expr.replace(lambda e: isinstance(e, sp.Product), lambda e: e.doit())


def _check_layer(L: int, k: int) -> None:
    if not 1 <= k <= L:
        raise ValueError(f"expected 1 ≤ k ≤ L; got k = {k}, L = {L}")


class _Names:
    """The symbols of the general formula as they are made, each with its Name (LaTeX, plain, meaning)."""

    def __init__(self) -> None:
        self.names: dict[Basic, Name] = {}
        self.symbols: dict[str, Basic] = {}

    def symbol(self, plain: str, latex: str, meaning: str, **assumptions) -> Symbol:
        s = self.symbols[plain] = Symbol(plain, **assumptions)
        self.names[s] = Name(latex, plain, meaning)
        return s

    def indexed(self, plain: str, latex: str, meaning: str, commutative: bool = True) -> sp.IndexedBase:
        label = Symbol(plain, commutative=commutative)
        self.names[label] = Name(latex, plain, meaning)
        base = self.symbols[plain] = sp.IndexedBase(label, commutative=commutative)
        return base

    def function(self, plain: str, latex: str, meaning: str, commutative: bool = True):
        f = self.symbols[plain] = sp.Function(plain, commutative=commutative)
        self.names[f] = Name(latex, plain, meaning)
        return f


def general_formula(activation: str | None = None, loss: str | None = None,
                    output: str | None = None, slope: Rational | None = None) -> GeneralFormula:
    """The general formula for a chain of L layers; ``output`` defaults to ``activation``.

    ``slope`` is a leaky ReLU's slope for z ≤ 0 (the registry's 1/100 when not given).

    >>> general_formula("sigmoid", "mse").loss_gradient.rhs
    2*(-y + a[L])/N
    """
    output = output or activation
    _check_general(activation, output, loss)
    n = _Names()
    L = n.symbol("L", "L", "number of layers (the output layer is layer L)", integer=True, positive=True)
    k = n.symbol("k", "k", "the layer whose parameters are differentiated", integer=True, positive=True)
    i = n.symbol("i", "i", "layer index of the product", integer=True, positive=True)
    N = n.symbol("N", "N", "number of samples", integer=True, positive=True)
    E = n.symbol("E", "E", "loss (one sample's contribution when there are several)")
    n.symbol("x", "x", "input (a_0)")
    y = n.symbol("y", "y", "target")
    w = n.indexed("w", "w", "weight of layer i")
    b = n.indexed("b", "b", "bias of layer i")
    z = n.indexed("z", "z", "net input of layer i")
    a = n.indexed("a", "a", "activation of layer i (a_0 = x)")
    delta = n.indexed("delta", r"\delta", "error signal ∂E/∂z_i of layer i")
    fp = n.function("f'", "f'", "derivative of the activation function")

    def derivative(name: str | None, l: Expr) -> Expr:
        if name is None:
            return fp(z[l])
        entry = activation_entry(name, slope)
        return entry.df(z[l], a[l])

    if loss is None:
        dE: Expr = sp.Derivative(E, a[L])
    else:
        rule = LOSSES[loss]
        dE = sp.factor_terms(sp.cancel(sp.diff(rule.scale(N, 1) * rule.term(a[L], y), a[L])))
    dw, db = sp.Derivative(E, w[k]), sp.Derivative(E, b[k])
    recursion = (
        Equation(delta[L], _ordered(dE, derivative(output, L)), "δ of the output layer"),
        Equation(delta[k], _ordered(derivative(activation, k), w[k + 1], delta[k + 1]),
                 "δ of layer k < L from δ of layer k + 1"),
        Equation(dw, _ordered(delta[k], a[k - 1]), "weight gradient from δ and the activation below"),
        Equation(db, delta[k], "bias gradient"),
    )
    unrolled = _ordered(dE, derivative(output, L), sp.Product(_ordered(w[i + 1], derivative(activation, i)), (i, k, L - 1)))
    closed = (Equation(delta[k], unrolled, "δ of layer k, the recursion unrolled"),
              Equation(dw, _ordered(*unrolled.args, a[k - 1]), "the general formula for the weight of layer k"),
              Equation(db, unrolled, "the general formula for the bias of layer k"))
    vector_recursion, vector_closed = _vector_forms(n, E, L, k, i, fp)
    return GeneralFormula(activation, output, loss, L, k, i, N, Equation(sp.Derivative(E, a[L]), dE,
                          "derivative of the loss with respect to the output"), recursion, closed,
                          vector_recursion, vector_closed, n.symbols, n.names)


def _vector_forms(n: _Names, E: Symbol, L: Symbol, k: Symbol, i: Symbol, fp) -> tuple[tuple[Equation, ...], ...]:
    """The vector form: δ_k = diag(f′(z_k)) W_{k+1}ᵀ δ_{k+1}, an ordered (non-commutative) product; its recursion
    and the recursion unrolled."""
    W = n.indexed("W", "W", "weight matrix of layer i (one row per unit)", commutative=False)
    av = n.indexed("a_vec", r"\mathbf{a}", "activation vector of layer i (a_0 = x)", commutative=False)
    zv = n.indexed("z_vec", r"\mathbf{z}", "net-input vector of layer i")
    bv = n.indexed("b_vec", r"\mathbf{b}", "bias vector of layer i", commutative=False)
    dv = n.indexed("delta_vec", r"\boldsymbol{\delta}", "error-signal vector of layer i", commutative=False)
    diag = n.function("diag", r"\operatorname{diag}", "diagonal matrix with a vector's entries", commutative=False)
    gv = n.symbol("dE/da_L", r"\frac{\partial E}{\partial \mathbf{a}_{L}}",
                  "gradient of the loss with respect to the output vector", commutative=False)

    def D(l: Expr) -> Expr:
        return diag(fp(zv[l]))

    vector_unrolled = sp.Product(D(i) * sp.transpose(W[i + 1]), (i, k, L - 1)) * D(L) * gv
    dW, dbv = sp.Derivative(E, W[k]), sp.Derivative(E, bv[k])
    recursion = (
        Equation(dv[L], D(L) * gv, "δ of the output layer"),
        Equation(dv[k], D(k) * sp.transpose(W[k + 1]) * dv[k + 1], "δ of layer k < L from δ of layer k + 1"),
        Equation(dW, dv[k] * sp.transpose(av[k - 1]), "weight gradient: δ times the activations below, transposed"),
        Equation(dbv, dv[k], "bias gradient"),
    )
    closed = (
        Equation(dv[k], vector_unrolled, "δ of layer k, the recursion unrolled (an ordered product)"),
        Equation(dW, vector_unrolled * sp.transpose(av[k - 1]), "the general formula for the weights of layer k"),
        Equation(dbv, vector_unrolled, "the general formula for the biases of layer k"))
    return recursion, closed


def _check_general(activation: str | None, output: str | None, loss: str | None) -> None:
    """The general formula is for a chain of single units: element-wise activations, a known loss."""
    for name in (activation, output):
        if name is not None and (name not in ACTIVATIONS or not ACTIVATIONS[name].elementwise):
            raise ValueError(f"expected an element-wise activation for a chain of single units; got {name!r}")
    if loss is not None and loss not in LOSSES:
        raise ValueError(f"expected one of {', '.join(LOSSES)}; got {loss!r}")


def _ordered(*factors: Expr) -> Expr:
    """A product kept in reading order (∂E/∂a_L first, a_{k−1} last) for printing with order="none".

    A factor that is itself a product reads with its sums last, as by hand: a(1 − a), not (1 − a)a.
    """
    return sp.Mul(*(sp.Mul(*_sums_last(f), evaluate=False) if f.is_Mul else f for f in factors), evaluate=False)


def _to_matrices(expr: Expr, layers: Sequence[int], names: dict[Basic, Name]) -> MatrixExpr:
    """An instantiated vector formula as a MatMul of MatrixSymbols of the right shapes."""
    L = len(layers) - 1

    def matrix(plain: str, shape: tuple[int, int], latex: str, meaning: str) -> MatrixSymbol:
        m = MatrixSymbol(plain, *shape)
        names[m] = Name(latex, plain, meaning)
        return m

    def factor(f: Expr) -> MatrixExpr:
        if isinstance(f, sp.transpose):
            return Transpose(factor(f.args[0]))
        if isinstance(f, sp.Indexed) and f.base.label.name == "W":
            j = int(f.indices[0])
            return matrix(f"W{j}", (layers[j], layers[j - 1]), f"W_{{{j}}}", f"weights of layer {j}")
        if isinstance(f, sp.Indexed) and f.base.label.name == "a_vec":
            j = int(f.indices[0])
            if j == 0:
                return matrix("x", (layers[0], 1), r"\mathbf{x}", "input vector")
            return matrix(f"a{j}", (layers[j], 1), rf"\mathbf{{a}}_{{{j}}}", f"activations of layer {j}")
        if isinstance(f, Symbol) and f.name == "dE/da_L":
            return matrix(f"dE/da{L}", (layers[L], 1), rf"\frac{{\partial E}}{{\partial \mathbf{{a}}_{{{L}}}}}",
                          "gradient of the loss with respect to the output vector")
        if f.func.__name__ == "diag":
            j = int(f.args[0].args[0].indices[0])
            return DiagMatrix(matrix(f"f'(z{j})", (layers[j], 1), rf"f'\left(\mathbf{{z}}_{{{j}}}\right)",
                                     f"derivative of the activation at every net input of layer {j}"))
        raise AssertionError(f"no matrix for {f}")

    parts = expr.args if isinstance(expr, sp.Mul) else (expr,)
    return MatMul(*(factor(f) for f in parts)) if len(parts) > 1 else factor(parts[0])
