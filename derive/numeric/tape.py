"""The fast path: the derivation compiled to straight-line Python on doubles, mpmath where doubles fail."""

from __future__ import annotations

import itertools
import math
import sys
from typing import Any, Callable, Protocol, Sequence

import mpmath
import sympy as sp
from sympy import Expr, Symbol
from sympy.printing.pycode import MpmathPrinter, PythonCodePrinter

from derive.errors import SpecError
from derive.model.backprop import Derivation
from derive.model.registry import NUMERIC
from derive.numeric.rule import batch_ratio, decayed, learning_rates

SMALLEST_NORMAL = sys.float_info.min     # below it a double loses digits, and below 4.9e−324 it is 0.0

# One sample's loss contribution and parameter gradients from parameters, inputs and targets.
Gradient = Callable[[Sequence[float], Sequence[float], Sequence[float]], tuple[float, list[float]]]


class _Printer(Protocol):
    """What the mixin below needs of the SymPy printer it is mixed into."""

    def _print(self, expr: Any) -> str: ...


class _Ours:
    """Prints our own functions as calls of the helpers of the tape's namespace."""

    def _print_Function(self: _Printer, e: Any) -> str:
        name = type(e).__name__
        if name in NUMERIC:          # Sigmoid(z) -> _Sigmoid(z): the registry's numeric form in the namespace
            return f"_{name}({', '.join(self._print(a) for a in e.args)})"
        return super()._print_Function(e)     # type: ignore[misc]  # the SymPy printer mixed in after us

    def _print_Heaviside(self: _Printer, e: Any) -> str:
        return f"(1 if {self._print(e.args[0])} > 0 else 0)"


class _FloatPrinter(_Ours, PythonCodePrinter):
    """The tape on doubles: the fast path."""


class _MpmathPrinter(_Ours, MpmathPrinter):
    """The tape on mpmath numbers: the careful path where doubles overflow or cancel to 0."""


FLOAT_HELPERS = {"math": math, **{f"_{name}": form.double for name, form in NUMERIC.items()}}
MPMATH_HELPERS = {"mpmath": mpmath, **{f"_{name}": form.mp for name, form in NUMERIC.items()}}


def compile_gradient(d: Derivation, careful: bool = False) -> Gradient:
    """One sample's loss contribution and parameter gradients as a generated Python function.

    The generated code is the derivation's own tape (forward definitions, then adjoints in
    backward order) with every symbol renamed to ``v<i>``; no user text reaches it. ``careful``
    prints it for mpmath numbers (the caller sets the precision) instead of doubles.
    """
    net = d.network
    symbols = list(net.parameters + net.inputs + net.targets + net.order) + [d.adjoint[v] for v in d.backward_order]
    rename = {s: Symbol(f"v{i}") for i, s in enumerate(symbols)}
    printer = (_MpmathPrinter if careful else _FloatPrinter)({"fully_qualified_modules": True,
                                                               "standard": "python3"})

    def assign(target: Symbol, expr: Expr) -> str:     # expr in its saturation-safe form (Derivation.safe)
        return f"    {rename[target]} = {printer.doprint(expr.xreplace(rename))}"

    def unpack(group: Sequence[Symbol], source: str) -> str:
        source = f"map(mpmath.mpf, {source})" if careful else source
        return f"    {', '.join(str(rename[s]) for s in group)}, = {source}"

    lines = ["def gradient(p, x, y):", unpack(net.parameters, "p"), unpack(net.inputs, "x"),
             unpack(net.targets, "y")]
    lines += [assign(s, d.safe_definitions[s]) for s in net.order]
    lines += [assign(d.adjoint[v], sp.S.Zero if v in d.vanishing else d.safe_gradient[v]) for v in d.backward_order]
    grads = ", ".join(str(rename[d.adjoint[p]]) for p in net.parameters)
    lines.append(f"    return {rename[net.loss]}, [{grads}]")
    namespace = dict(MPMATH_HELPERS if careful else FLOAT_HELPERS)
    exec(compile("\n".join(lines), "<derive gradient>", "exec"), namespace)   # our own tape only
    return namespace["gradient"]


class SampleGradient:
    """One sample's loss and gradient in doubles, falling back to mpmath where doubles fail.

    A sigmoid output that rounds to 1.0 makes ln(1 − o) and 1/(1 − o) of the cross-entropy fail
    in doubles although the true values are finite; a softmax input above 709 overflows e^z.
    Such a sample is redone with mpmath at rising precision until two precisions agree, so
    the doubles returned are the true values rounded, and only a true overflow is divergence.
    """

    DIGITS = (30, 120, 480, 1920, 7680)

    def __init__(self, d: Derivation):
        self.derivation, self.fast = d, compile_gradient(d)
        self._careful: Gradient | None = None    # compiled on the first sample that needs it
        self.start = 0              # the lowest precision that sufficed last time: training drifts slowly

    def __call__(self, p: Sequence[float], x: Sequence[float], y: Sequence[float]) -> tuple[float, list[float]]:
        try:
            e, g = self.fast(p, x, y)
            if math.isfinite(e) and all(map(math.isfinite, g)):
                return e, g
        except (OverflowError, ValueError, ZeroDivisionError):
            pass
        return self.slow(p, x, y)

    @property
    def careful(self) -> Gradient:
        """The gradient compiled for mpmath, in its saturation-safe forms (compiled once, when first needed)."""
        if self._careful is None:
            self._careful = compile_gradient(self.derivation, careful=True)
        return self._careful

    def slow(self, p, x, y) -> tuple[float, list[float]]:
        careful = self.careful
        previous = None
        for level in range(self.start, len(self.DIGITS)):
            with mpmath.workdps(self.DIGITS[level]):
                try:
                    e, g = careful(p, x, y)
                except (ValueError, ZeroDivisionError):     # 1 − o still 0 at these digits
                    e, g = None, []
                result = _doubles(e, g)
            if result is not None and result == previous:
                self.start = level - 1
                return result
            previous = result
        raise OverflowError

    def wide_loss(self, p, x, y) -> Any:
        """The sample's loss as an mpf of 53 bits with no exponent limit, for one the doubles underflow.

        A sample fitted to within e^−800 has a loss of 3.7e−348: 0.0 in doubles, and a loss
        history that shows 0.0 (or a subnormal's few digits) would be a wrong number.
        """
        careful = self.careful
        previous, e = None, None
        for digits in self.DIGITS:
            with mpmath.workdps(digits):
                e = mpmath.mpf(careful(p, x, y)[0])
            with mpmath.workprec(53):
                double = +e                 # agreement to a double's 53 bits, the value kept wider
            if double == previous:
                return e
            previous = double
        return e


def _doubles(e: Any, g: Sequence[Any]) -> tuple[float, list[float]] | None:
    """The loss and gradient rounded to doubles, or None unless every one is a finite real.

    Only finite values can agree: two precisions that both lose every digit to 1 − o = 0 give
    the same infinity (or a complex logarithm of a negative rounding error), and neither is the
    true value.
    """
    values = [e, *g]
    if not all(isinstance(v, (int, float, mpmath.mpf)) and mpmath.isfinite(v) for v in values):
        return None
    doubles = [float(v) for v in values]
    if not all(map(math.isfinite, doubles)):        # finite, but beyond doubles
        return None
    return doubles[0], doubles[1:]


def descend(d: Derivation, params: list[float], steps: int, done: int = 0,
            fixed: set[Symbol] | frozenset[Symbol] = frozenset(),
            velocity: Sequence[float] | None = None) -> tuple[list[Any], list[float]]:
    """Run ``steps`` updates from ``params``; the loss over every sample before and after each.

    Each loss is a double, or an mpf below the doubles' normal range (``_Descent.wide``).

    ``done`` counts the updates already taken to reach ``params`` (the error message and the
    batch order go on from there) and ``velocity`` is the momentum they left; the parameters in
    ``fixed`` (frozen) are not updated.
    """
    spec = d.network.spec
    descent = _Descent(d, fixed, velocity or [0.0] * len(params))
    order = itertools.islice(spec.optimizer.order(), done, None)
    losses: list[Any] = []
    try:
        for step in range(steps + 1):
            loss, gradients = descent.evaluate(params)
            losses.append(loss)
            if step < steps:
                descent.update(params, gradients, next(order))
    except OverflowError:
        raise SpecError(spec.source, "[train].learning_rate",
                        f"after step {done + len(losses)} the loss is no longer a finite double (the steps "
                        f"diverged); expected a smaller learning rate or fewer steps") from None
    return losses, params


class _Descent:
    """One update after another in doubles: the rule of [train] (rates per layer, batches, decay, momentum)."""

    def __init__(self, d: Derivation, fixed: set[Symbol] | frozenset[Symbol], velocity: Sequence[float]):
        net, spec = d.network, d.network.spec
        self.gradient, self.optimizer = SampleGradient(d), spec.optimizer
        self.data = [([float(v) for v in x], [float(v) for v in y]) for x, y in zip(spec.x, spec.y)]
        rates = learning_rates(d)
        self.rates = [float(rates[p]) for p in net.parameters]
        self.trainable = [i for i, p in enumerate(net.parameters) if p not in fixed]
        decay = decayed(d)
        self.decay = [(i, float(decay[p])) for i, p in enumerate(net.parameters) if p in decay]
        self.momentum, self.velocity = float(spec.optimizer.momentum), list(velocity)
        self.ratio = {size: float(batch_ratio(spec, size)) for size in range(1, spec.samples + 1)}

    def evaluate(self, params: list[float]) -> tuple[Any, list[list[float]]]:
        """The loss over every sample (with the decay's λ/2 Σ w²) and each sample's gradient of its e_n.

        The loss is a double, or an mpf where it falls below the doubles' normal range.
        """
        loss, gradients = 0.0, []
        for x, y in self.data:
            e, g = self.gradient(params, x, y)
            loss += e
            gradients.append(g)
        penalty = [lam / 2 * params[i] ** 2 for i, lam in self.decay]
        loss += sum(penalty)
        if not (math.isfinite(loss) and all(math.isfinite(v) for g in gradients for v in g)):
            raise OverflowError
        if loss < SMALLEST_NORMAL:
            return self.wide(params, penalty), gradients
        return loss, gradients

    def wide(self, params: list[float], penalty: list[float]) -> Any:
        """The loss whose double underflows, as an mpf: each sample's loss again in mpmath."""
        exact = [self.gradient.wide_loss(params, x, y) for x, y in self.data]
        with mpmath.workdps(30):
            total = mpmath.fsum(exact + [mpmath.mpf(v) for v in penalty])
        return float(total) if total == 0 or total >= SMALLEST_NORMAL else total

    def update(self, params: list[float], gradients: list[list[float]], batch: Sequence[int]) -> None:
        """One update on the samples of ``batch``: v ← μ v − η g, p ← p + v (p ← p − η g without momentum)."""
        total = [0.0] * len(params)
        for n in batch:
            total = [t + gi for t, gi in zip(total, gradients[n])]
        if len(batch) < len(self.data):
            total = [self.ratio[len(batch)] * t for t in total]
        for i, lam in self.decay:
            total[i] += lam * params[i]
        if not all(map(math.isfinite, total)):
            raise OverflowError
        for i in self.trainable:
            if self.momentum:
                self.velocity[i] = self.momentum * self.velocity[i] - self.rates[i] * total[i]
                params[i] += self.velocity[i]
            else:
                params[i] -= self.rates[i] * total[i]
