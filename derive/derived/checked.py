"""Every formula of the general sections evaluated at this network's numbers before it is printed."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, partial, reduce
from typing import Callable, Iterable, Mapping

import mpmath
import sympy as sp
from sympy import Expr, ImmutableMatrix, MatrixSymbol, Symbol

from derive.derived import formulas, general
from derive.derived.general import GeneralEquation, Grid, Writer, explicit
from derive.derived.solution import Solution
from derive.errors import DeriveError
from derive.model.backprop import Derivation
from derive.model.network import Network
from derive.numeric import arithmetic
from derive.numeric.arithmetic import Point
from derive.numeric.values import PRECISION, Step, digits, exact, value


class FormulaError(DeriveError):
    """A formula derive was about to print does not hold at this network's numbers (a bug in derive)."""


@dataclass(frozen=True)
class Tally:
    """How many formulas one section prints and how many evaluations checked them."""

    formulas: int
    evaluations: int
    unevaluable: int = 0        # evaluations plain arithmetic could not do (0/0 where a unit saturates)


@dataclass(frozen=True)
class FormulaChecks:
    """The count of every general section's formulas, each evaluated and compared with the engine's values."""

    recursion: Tally
    matrix: Tally
    general: Tally
    digits: int                 # every comparison agreed to at least this many significant digits

    @property
    def formulas(self) -> int:
        return self.recursion.formulas + self.matrix.formulas + self.general.formulas

    @property
    def evaluations(self) -> int:
        return self.recursion.evaluations + self.matrix.evaluations + self.general.evaluations

    @property
    def unevaluable(self) -> int:
        return self.recursion.unevaluable + self.matrix.unevaluable + self.general.unevaluable

    @property
    def note(self) -> str:
        """What was checked, in a sentence for the verification section."""
        shown = [(t, what) for t, what in ((self.recursion, "of the layer-wise recursion"),
                                           (self.matrix, "of the matrix form"), (self.general, "for any depth"))
                 if t.formulas]
        parts = ", ".join(f"{t.formulas} {what}" for t, what in shown) if len(shown) != 1 else shown[0][1]
        return (f"each of the {self.formulas} formulas of the general section ({parts}) was evaluated at this network's numbers, at every sample and every layer it stands for "
                f"({self.evaluations} evaluations), and agreed with the chain rule's values to {self.digits} "
                f"significant digits (where a difference of nearly equal numbers leaves fewer, to the precision "
                f"of the numbers it is made of) before the document was written" + self._saturated)

    @property
    def _saturated(self) -> str:
        if not self.unevaluable:
            return ""
        return (f"; {self.unevaluable} of the evaluations could not be done in plain arithmetic, because a "
                f"saturated unit's 1 − a is 0 at every precision there is, and the chain rule's "
                f"saturation-safe values stand there alone")


AGREE = PRECISION // 2     # significant digits every comparison agrees to (fewer where ``_entry`` says)


class _Comparer:
    """Compares a formula's value with the engine's to half the working digits (exact where both are exact)."""

    agree = AGREE

    def __init__(self, step: Step, what: str, inputs: int | None = None):
        self.step, self.what, self.given = step, what, inputs
        self.count = 0
        self.unevaluable = 0
        self._magnitudes: dict[tuple[type, Expr], mpmath.mpf] = {}

    # each a pass over every value of every sample, made when a comparison first needs it: a short document
    # checks no recursion, and the last of those passes (SymPy's abs) was a tenth of the checks' time
    @cached_property
    def _values(self) -> list[Expr]:
        return [v for env in self.step.samples for v in env.values()]

    @cached_property
    def work(self) -> int:
        return max(digits(v) for v in self._values)

    @cached_property
    def inputs(self) -> int:
        # the least precise input bounds a difference of nearly equal numbers (see ``same``); the
        # matrix form computes its products at PRECISION digits
        return self.given or min((digits(v) for v in self._values if v.is_Float), default=self.work)

    def same(self, formula: str, ours: Expr, engine: Expr, inputs: Expr | Callable[[], Expr] = sp.S.One) -> None:
        """One evaluation of a scalar formula; ``inputs`` as in ``_entry``, or what makes it where the relative test
        does not decide (a magnitude that costs a walk through the formula)."""
        self.count += 1
        if callable(inputs):
            if self._close(ours, engine, sp.S.Zero):
                return
            inputs = inputs()
        self._entry(formula, ours, engine, inputs)

    def same_matrix(self, formula: str, ours: ImmutableMatrix, engine: ImmutableMatrix) -> None:
        """One evaluation of a matrix formula, entry by entry."""
        if ours.shape != engine.shape:
            raise FormulaError(f"internal error: {self.what} formula {formula} has shape {ours.shape}, "
                               f"expected {engine.shape}")
        self.count += 1
        for x, y in zip(ours, engine):
            self._entry(formula, x, y, sp.S.One)

    def same_numbers(self, formula: str, ours: Grid, engine: Grid, scale: Callable[[], Grid]) -> None:
        """``same_matrix`` of matrices already in numbers, at the precision ``digits`` (the caller's context).

        ``scale()``: each entry's magnitude (``general.absolute``), made only where an entry differs by more than
        the relative tolerance: a difference of nearly equal numbers is as exact as the numbers it is made of. (The
        largest value of the whole batch, the allowance before, is 10^16860 beside a saturated unit: a formula
        twice too large passed there.)"""
        shapes = [(len(m), len(m[0])) for m in (ours, engine)]
        if shapes[0] != shapes[1]:
            raise FormulaError(f"internal error: {self.what} formula {formula} has shape {shapes[0]}, "
                               f"expected {shapes[1]}")
        self.count += 1
        scales: list[arithmetic.Number] = []
        for k, (x, y) in enumerate(zip(general.flat(ours), general.flat(engine))):
            if self._agree(x, y, None):
                continue
            scales = scales or general.flat(scale())
            inputs = scales[k] if mpmath.isfinite(arithmetic.as_mpf(scales[k])) else Fraction(0)
            if not self._agree(x, y, arithmetic.as_mpf(inputs) / self._scales[1]):
                self._entry(formula, _sympy(x), _sympy(y), _sympy(inputs))   # decides in SymPy's numbers

    def _agree(self, x: arithmetic.Number, y: arithmetic.Number, absolute: mpmath.mpf | None) -> bool:
        """The test of ``_close``, |x − y| ≤ max(|x|, |y|)/10^agree + absolute (None: the relative part alone)."""
        if isinstance(x, Fraction) and isinstance(y, Fraction) and x == y:
            return True
        a, b = arithmetic.as_mpf(x), arithmetic.as_mpf(y)
        if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
            return False
        return bool(abs(a - b) <= max(abs(a), abs(b)) / self._scales[0] + (absolute or 0))

    def _entry(self, formula: str, ours: Expr, engine: Expr, inputs: Expr) -> None:
        """``inputs``: the magnitude the entry was evaluated from (the largest value it used, or for the general
        formulas the sum of its terms' magnitudes); a difference of nearly equal numbers (o − y with
        o = 1 − 10⁻⁷⁸³) is as exact as they are, not as its result."""
        if self._close(ours, engine, inputs):
            return
        ours, engine = exact(ours, self.work), exact(engine, self.work)
        if not ours.is_finite and engine.is_finite:
            # o = 1 − e^−400000 is 1 at any precision there is: (o − y)/(o(1 − o)) is 0/0 in plain
            # arithmetic, where the chain rule took the saturation-safe form; nothing to compare
            self.unevaluable += 1
            return
        difference = abs(exact(ours - engine, self.work))
        tolerance = max(abs(ours), abs(engine)) / 10 ** self.agree + abs(inputs) / sp.Integer(10) ** (self.inputs - 5)
        if difference <= tolerance:
            return
        raise FormulaError(f"internal error: {self.what} formula {formula} gives {sp.N(ours, 12)} where the chain "
                           f"rule gives {sp.N(engine, 12)}; the document is not written")

    def _close(self, ours: Expr, engine: Expr, inputs: Expr) -> bool:
        """The tolerance of ``_entry`` met by two finite numbers, in Fractions and mpmath at the working digits and
        more (SymPy's arithmetic of the same test cost the check most of its time); False: ``_entry`` decides."""
        try:
            x, y, largest = arithmetic.number(ours), arithmetic.number(engine), self._magnitude(inputs)
        except arithmetic.Unsupported:
            return False
        with mpmath.workdps(self.digits):
            return self._agree(x, y, largest / self._scales[1])

    @cached_property
    def digits(self) -> int:
        """The working digits of ``_close``: twice the values' own."""
        return 2 * self.work

    # the same numbers at the same precision for every entry: made once (a tenth of the general formulas' checks)
    @cached_property
    def _scales(self) -> tuple[mpmath.mpf, mpmath.mpf]:
        """10^agree and 10^(inputs − 5) at the working digits of ``_close``."""
        with mpmath.workdps(self.digits):
            return mpmath.mpf(10) ** self.agree, mpmath.mpf(10) ** (self.inputs - 5)

    def _magnitude(self, inputs: Expr) -> mpmath.mpf:
        """|inputs| at the working digits of ``_close``; Unsupported where it is no number."""
        key = (type(inputs), inputs)
        if key not in self._magnitudes:
            value = arithmetic.number(abs(inputs))
            with mpmath.workdps(self.digits):
                self._magnitudes[key] = arithmetic.as_mpf(value)
        return self._magnitudes[key]

# -- the layer-wise recursion -----------------------------------------------------------------

def check_recursion(d: Derivation, step: Step, layers: Iterable[formulas.LayerRecursion]) -> Tally:
    """Each δ rule (and its written-out form) and each parameter rule, at every sample."""
    compare, count = _Comparer(step, "recursion"), 0
    for layer in layers:
        pairs = [(form, u.delta) for u in layer.units for form in dict.fromkeys(u.forms)]
        pairs += [(g.rule, g.gradient) for g in layer.weights + layer.biases]
        count += len(pairs)
        safe = [(str(form), d.safe(form), symbol) for form, symbol in pairs]      # the same at every sample
        for env in step.samples:
            values = {**step.parameters, **env}
            spread = _Spread(values, compare.digits)
            for name, form, symbol in safe:
                compare.same(name, form.xreplace(values), env[symbol], partial(spread, form))
    return Tally(count, compare.count, compare.unevaluable)


class _Spread:
    """The magnitude a recursion form's value can move by with its numbers (``arithmetic.propagated``), made where
    the relative test did not decide: a hidden δ beside a saturated unit is 10⁻⁴⁰⁰⁰ where the sample's largest
    value, the allowance before, was 10⁴. Where the form has a node without a rule there, that largest value."""

    def __init__(self, values: Mapping[Symbol, Expr], digits: int):
        self.values, self.digits = values, digits

    @cached_property
    def point(self) -> Point | None:
        try:
            return Point(self.values)
        except arithmetic.Unsupported:
            return None

    def __call__(self, form: Expr) -> Expr:
        with mpmath.workdps(self.digits):
            try:
                if self.point is not None:
                    return _sympy(arithmetic.propagated(form, self.point))
            except arithmetic.Unsupported:
                pass
        return max(abs(v) for v in self.values.values())


# -- the matrix form ---------------------------------------------------------------------------

def check_matrix_form(form: formulas.MatrixForm, net: Network, d: Derivation, step: Step) -> Tally:
    """Every matrix the equations compute for the batch, against the engine's per-unit values."""
    compare = _Comparer(step, "matrix-form", inputs=PRECISION)
    values = formulas.matrix_values(form, net, step)
    engine = _engine_matrices(form, net, d, step)
    equations = form.forward + form.backward
    for eq in equations:
        lhs = eq.lhs
        for layer in form.layers:
            if layer.column is not None and lhs == layer.column.delta:
                lhs = layer.Delta       # checked for the whole batch, every sample's Jacobian applied
        if lhs in engine:
            compare.same_matrix(str(eq.lhs), values[lhs], engine[lhs])
    return Tally(len(equations), compare.count, compare.unevaluable)


def _engine_matrices(form: formulas.MatrixForm, net: Network, d: Derivation, step: Step) -> dict:
    out = {}
    for layer in form.layers:
        l = layer.layer
        out[layer.Z] = formulas.batch_matrix(net, step, net.nets[l - 1])
        out[layer.A] = formulas.batch_matrix(net, step, net.activations[l - 1])
        out[layer.Delta] = formulas.batch_matrix(net, step, [d.adjoint[z] for z in net.nets[l - 1]])
        out[layer.dW] = formulas.weight_matrix(net, l).xreplace(step.gradient)
        bias = formulas.bias_matrix(net, l)
        if layer.db is not None and bias is not None:
            out[layer.db] = bias.xreplace(step.gradient)
        if layer.upstream is not None:
            out[layer.upstream] = formulas.batch_matrix(net, step, [d.adjoint[o] for o in net.outputs])
    return out


# -- the general formulas ---------------------------------------------------------------------

def check_general(equations: Iterable[GeneralEquation], net: Network, d: Derivation, step: Step) -> Tally:
    """Each general equation, every form of it, at every layer it stands for and every sample."""
    compare, count = _Comparer(step, "general"), 0
    constants = Point({formulas.N: sp.Integer(net.spec.samples), formulas.J: sp.Integer(net.spec.layers[-1])})
    values = _Values(net, d, step)
    with mpmath.workdps(compare.digits):        # the precision the comparisons work at
        for eq in equations:
            count += len(general.written(net, eq)[1]) - 1      # the forms printed, once for every layer
            for l in eq.concrete_layers(net.spec.depth):
                _check_equation(eq, l, values, constants, compare)
    return Tally(count, compare.count, compare.unevaluable)


def _check_equation(eq: GeneralEquation, l: int, values: "_Values", constants: Point, compare: _Comparer) -> None:
    """One equation at layer l; the batch sum once, the others at every sample."""
    writer = Writer(values.net, concrete=True)      # the forms are the same for every sample: written once
    forms = eq.at(writer, sp.Integer(l))

    def table(n: int) -> dict[MatrixSymbol, Grid]:
        return {m: values(family, layer, n) for m, (family, layer) in writer.where.items()}

    def scale(n: int, k: int) -> Grid:
        """How far form k's entries and the left side's move with their numbers, at sample n (see ``same_numbers``;
        made only where an entry misses the relative test)."""
        at = table(n)
        return general.add(general.spread(forms[k], at, constants), general.spread(forms[0], at, constants))

    name, samples = f"{eq.meaning} (layer {l})", range(len(values.step.samples))
    if eq.key == "batch":
        sums = [[explicit(f, table(n), constants) for f in forms] for n in samples]
        total = reduce(general.add, (f[1] for f in sums[1:]), sums[0][1])
        compare.same_numbers(name, total, sums[0][0], lambda: reduce(general.add, (scale(n, 1) for n in samples)))
        return
    for n in samples:
        lhs, *rhs = (explicit(f, table(n), constants) for f in forms)
        for k, form in enumerate(rhs, 1):
            compare.same_numbers(name, form, lhs, partial(scale, n, k))


class _Values:
    """The numbers of each quantity of each layer for each sample, made once for every equation that uses them."""

    def __init__(self, net: Network, d: Derivation, step: Step):
        self.net, self.d, self.step = net, d, step
        self.points = [Point(env) for env in step.samples]
        self.made: dict[tuple[general.Family, int, int], Grid] = {}
        self.parameters: dict[tuple[bool, int], list[list[Symbol]]] = {}

    def symbols(self, family: general.Family, l: int) -> list[list[Symbol]]:
        """The parameters of layer l laid out as ``family`` is, made once for the weights and the biases."""
        key = (family.weights, l)
        if key not in self.parameters:
            self.parameters[key] = _parameter_symbols(family, self.net, l).tolist()
        return self.parameters[key]

    def __call__(self, family: general.Family, l: int, n: int) -> Grid:
        # the parameters and the batch's gradient are the same for every sample
        key = (family, l, n if family in _PER_SAMPLE or not (family.weights or family.bias) else -1)
        if key not in self.made:
            self.made[key] = self._numbers(family, l, n)
        return self.made[key]

    def _numbers(self, family: general.Family, l: int, n: int) -> Grid:
        """``_value`` as Fractions and mpmath numbers, each converted once from SymPy."""
        env = self.step.samples[n]
        if family.weights or family.bias:
            table = _parameter_values(family, self.d, self.step, env)
            return [[arithmetic.number(table(p)) for p in row] for row in self.symbols(family, l)]
        entries = [arithmetic.number(e) for e in _entries(family, l, self.net, self.d, env, self.points[n])]
        return [entries] if self.net.spec.convention.rows else [[e] for e in entries]


def _value(family: general.Family, l: int, net: Network, d: Derivation, step: Step,
           env: Mapping[Symbol, Expr], point: Point | None = None) -> ImmutableMatrix:
    """The numbers of one quantity of layer l for one sample, laid out as the writer shaped it."""
    if family.weights or family.bias:
        return _parameter_symbols(family, net, l).applyfunc(_parameter_values(family, d, step, env))
    entries = _entries(family, l, net, d, env, point)
    column = ImmutableMatrix(entries)
    return column.T if net.spec.convention.rows else column


def _parameter_values(family: general.Family, d: Derivation, step: Step,
                      env: Mapping[Symbol, Expr]) -> Callable[[Symbol], Expr]:
    """The value of each parameter: its own, one sample's derivative or the batch's."""
    if family in _PER_SAMPLE:
        return lambda p: env[d.adjoint[p]]
    return step.gradient.__getitem__ if family is general.DW_BATCH else step.parameters.__getitem__


def _parameter_symbols(family: general.Family, net: Network, l: int) -> ImmutableMatrix:
    matrix = formulas.weight_matrix(net, l) if family.weights else formulas.bias_matrix(net, l)
    if matrix is None:
        raise AssertionError(f"a bias of layer {l} in a network without biases")
    return matrix


def _entries(family: general.Family, l: int, net: Network, d: Derivation, env: Mapping[Symbol, Expr],
             point: Point | None) -> list[Expr]:
    if family is general.A and l == 0:
        return [env[x] for x in net.inputs]
    nets, acts = net.nets[l - 1], net.activations[l - 1]
    if family is general.FPRIME:        # by the engine's arithmetic at the sample's point, as exact() would give it
        f = net.activation(l - 1)
        return [value(d.safe(f.df(z, a)), env, PRECISION, point) for z, a in zip(nets, acts)]
    if family is general.ONES:
        return [sp.S.One] * len(nets)
    symbols = {general.Z: nets, general.A: acts, general.DELTA: [d.adjoint[z] for z in nets],
               general.DEDA: [d.adjoint[a] for a in acts], general.TARGET: net.targets}[family]
    return [env[s] for s in symbols]


_PER_SAMPLE = (general.DW, general.DB, general.SHARED_DB)    # one sample's derivatives, shaped like the parameters


def _sympy(x: arithmetic.Number) -> Expr:
    """A number of ``explicit`` as SymPy's arithmetic would have made it: Rational, Float, or zoo and nan for ∞."""
    if isinstance(x, Fraction):
        return sp.Rational(x.numerator, x.denominator)
    if mpmath.isnan(x):
        return sp.nan
    return sp.zoo if mpmath.isinf(x) else sp.Float._new(x._mpf_, mpmath.mp.prec)


def check_formulas(solution: Solution, layers, form: formulas.MatrixForm | None,
                   equations: tuple[GeneralEquation, ...]) -> FormulaChecks:
    """The general sections a document prints, on the exact values of the first step (the short document
    prints no layer-wise recursion, ``layers`` empty, and no matrix form, ``form`` None)."""
    # the formulas hold for the exact values, not for carried rounded ones
    d, net, step = solution.derivation, solution.network, solution.exact_first
    recursion = check_recursion(d, step, layers)
    matrix = check_matrix_form(form, net, d, step) if form is not None else Tally(0, 0)
    general_tally = check_general(equations, net, d, step)
    return FormulaChecks(recursion, matrix, general_tally, AGREE)
