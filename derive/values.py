"""Numbers: the exact first step (rationals, or 60 digits where exp enters) and fast later steps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import mpmath
import sympy as sp
from sympy import Expr, Symbol
from sympy.codegen.cfunctions import log1p
from sympy.printing.pycode import MpmathPrinter, PythonCodePrinter

from .backprop import Derivation
from .activations import Sigmoid, Softplus
from .latex import number, round_significant
from .network import Network
from .errors import SpecError

PRECISION = 60          # significant digits kept for values that are not rational


@dataclass(frozen=True, eq=False)
class Step:
    """One gradient-descent step on the whole batch, every number exact or at PRECISION digits.

    ``samples[n]`` maps every symbol of the derivation (x, y, z, a, the loss contribution and
    each adjoint symbol) to its value for sample n.
    """

    parameters: dict[Symbol, Expr]
    samples: tuple[dict[Symbol, Expr], ...]
    loss: Expr
    gradient: dict[Symbol, Expr]
    updated: dict[Symbol, Expr]
    # with carried rounding: per sample, the symbols whose value rounding changed, and of the
    # totals ("loss", None), ("gradient", p), ("updated", p) those it changed; a document writes ≈ there
    rounded: tuple[frozenset, ...] = ()
    rounded_totals: frozenset = frozenset()


@dataclass(frozen=True, eq=False)
class Training:
    """The first step in full, the forward pass after it, and the loss after every step."""

    first: Step
    after: Step                     # the network evaluated at the updated parameters
    history: tuple[float, ...]      # loss before step 1, then after each step
    final: dict[Symbol, float]      # parameters after the last step


def exact(value: Expr, digits: int = PRECISION) -> Expr:
    """Keep rationals exact; evaluate anything else (σ(7/20), e^…) to ``digits`` digits."""
    if value.is_Rational:
        return value
    number = value.evalf(digits)
    if not number.is_number:
        raise AssertionError(f"value left symbolic: {value}")
    return number


def digits(value: Expr) -> int:
    """The decimal digits to evaluate with beside ``value``: its own where it carries more than PRECISION."""
    return max(PRECISION, mpmath.libmp.prec_to_dps(value._prec)) if value.is_Float else PRECISION


def initial_parameters(d: Derivation) -> dict[Symbol, Expr]:
    """The spec's initial values, keyed by parameter symbol."""
    net, spec = d.network, d.network.spec
    values: dict[Symbol, Expr] = {}
    for l, layer in enumerate(net.weights):
        for j, row in enumerate(layer):
            values.update(zip(row, spec.weights[l][j]))
        for j, b in enumerate(net.biases[l]):
            values[b] = spec.biases[l][0 if spec.bias == "shared" else j]
    return values


def frozen(d: Derivation) -> set[Symbol]:
    """The parameters that [train].freeze keeps fixed (single names, or whole layers W2/b2).

    A parameter's own name wins: with sequential per-unit biases ``b2`` is the second bias the
    document shows, not layer 2's biases (which are then frozen by listing their names).
    """
    net, names = d.network, set(d.network.spec.freeze)
    own = {net.names[p].plain: p for p in net.parameters}
    out = {own[n] for n in names if n in own}
    for l in range(len(net.weights)):
        if f"W{l + 1}" in names:
            out |= {w for row in net.weights[l] for w in row}
        if f"b{l + 1}" in names and f"b{l + 1}" not in own:
            out |= set(net.biases[l])
    return out


def evaluate(d: Derivation, parameters: Mapping[Symbol, Expr], carry: int | None = None) -> Step:
    """Forward pass, loss and backward pass for every sample, then the batch gradient and update.

    With ``carry``, every value is rounded to that many significant digits as soon as it is
    computed and used rounded from then on, as in a hand calculation: the numbers a document
    prints are then the numbers the next line uses.
    """
    net, spec = d.network, d.network.spec
    keep = Carry(carry)
    samples = [keep.sample(_sample(d, {**parameters, **dict(zip(net.inputs, x)), **dict(zip(net.targets, y))}, keep))
               for x, y in zip(spec.x, spec.y)]
    loss = keep(sp.Add(*(env[net.loss] for env in samples)), ("loss", None))
    gradient = {p: keep(sp.Add(*(env[d.adjoint[p]] for env in samples)), ("gradient", p)) for p in net.parameters}
    fixed = frozen(d)
    updated = {p: v if p in fixed else keep(v - spec.learning_rate * gradient[p], ("updated", p))
               for p, v in parameters.items()}
    return Step(dict(parameters), tuple(samples), loss, gradient, updated, tuple(keep.rounded), frozenset(keep.changed))


class Carry:
    """Rounding as a hand calculation does it (``digits`` significant digits), or none for None.

    It remembers what rounding changed, so a document can write ≈ before those values only.
    """

    def __init__(self, digits: int | None):
        self.digits, self.changed, self.rounded = digits, set(), []

    def __call__(self, value: Expr, key=None) -> Expr:
        if self.digits is None:
            return value
        shown = round_significant(value, self.digits)
        if shown != value and key is not None:
            self.changed.add(key)
        return shown

    def sample(self, env: dict[Symbol, Expr]) -> dict[Symbol, Expr]:
        """Close one sample: what rounding changed in it so far is that sample's."""
        self.rounded.append(frozenset(self.changed))
        self.changed = set()
        return env


def _sample(d: Derivation, given: dict[Symbol, Expr], keep: Carry | None = None) -> dict[Symbol, Expr]:
    """One sample's every value, at PRECISION digits or more where that is not enough.

    Near saturation a fixed number of digits is not enough: σ(z) for z above ~110 rounds to 1
    at 60 digits, and with it 1 − a in σ′ = a(1 − a) and ln(1 − o) to 0; an output below
    1e−60 vanishes in ln(1 − o). Such a sample is redone with four times the digits until every
    activation is resolved. With carried rounding (``keep``) every value is rounded instead.
    """
    keep = keep or Carry(None)
    net, digits, carried = d.network, PRECISION, keep.digits is not None
    while True:
        env = dict(given)
        for s in net.order:
            env[s] = keep(exact(net.definitions[s].xreplace(env), digits), s)
        if carried or digits >= MAX_DIGITS or not _unresolved(net, env, digits):
            break
        keep.changed.clear()
        digits *= 4
    for v in d.backward_order:
        if not carried:
            env[d.adjoint[v]] = exact(d.gradient[v].xreplace(env), digits)
            continue
        # each factor rounded as it is written down, then the sum of their products
        upstream = {e.child: d.adjoint[e.child].xreplace(env) for e in d.edges[v]}     # ∂E/∂E = 1
        env[d.adjoint[v]] = keep(sp.Add(*(upstream[e.child] * keep(exact(e.local.xreplace(env)))
                                          for e in d.edges[v])), d.adjoint[v])
    return env


MAX_DIGITS = 3840       # resolves σ(z) up to z ≈ 8,800


def _unresolved(net: Network, env: dict[Symbol, Expr], digits: int) -> bool:
    """Whether an activation lies within the last digits of 1 or −1 or (for a positive one) of 0."""
    near = sp.Float(10, digits) ** (20 - digits)
    for name, layer in zip(net.spec.activations, net.activations):
        positive, bounded = name in ("sigmoid", "softmax", "softplus"), name in ("sigmoid", "softmax", "tanh")
        for a in (env[a] for a in layer):
            if positive and abs(a) < near or bounded and not a.is_Rational and abs(1 - abs(a)) < near:
                return True
    return False


def train(d: Derivation, carry: int | None = None) -> Training:
    """Step 1 exactly (or with carried rounding), then the remaining steps in double precision."""
    first = evaluate(d, initial_parameters(d), carry)
    after = evaluate(d, first.updated, carry)
    history = [float(first.loss), float(after.loss)]
    spec = d.network.spec
    if not math.isfinite(history[0]):       # the data and initial values, not the steps, are too large
        raise SpecError(spec.source, "[init]", f"the initial loss is about {number(first.loss, 2, inexact=True).plain}, beyond "
                                               f"double precision (about 1e308); expected smaller initial "
                                               f"parameters or inputs")
    params = [float(after.parameters[p]) for p in d.network.parameters]
    steps = spec.steps
    if steps > 1:
        losses, params = descend(d, params, steps - 1, done=1)
        history += losses[1:]
    return Training(first, after, tuple(history), dict(zip(d.network.parameters, params)))


# -- the fast path: the same derivation, compiled to straight-line Python on floats ----------

class _Ours:
    """Prints our own functions as calls of the helpers of the tape's namespace."""

    def _print_Sigmoid(self, e):
        return f"_sigmoid({self._print(e.args[0])})"

    def _print_ReLU(self, e):
        return f"max(0, {self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"_softplus({self._print(e.args[0])})"

    def _print_Heaviside(self, e):
        return f"(1 if {self._print(e.args[0])} > 0 else 0)"


class _FloatPrinter(_Ours, PythonCodePrinter):
    """The tape on doubles: the fast path."""


class _MpmathPrinter(_Ours, MpmathPrinter):
    """The tape on mpmath numbers: the careful path where doubles overflow or cancel to 0."""


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


FLOAT_HELPERS = {"math": math, "_sigmoid": _sigmoid, "_softplus": _softplus}
MPMATH_HELPERS = {"mpmath": mpmath, "_sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
                  "_softplus": lambda z: mpmath.log1p(mpmath.exp(z))}


def compile_gradient(d: Derivation, careful: bool = False) -> Callable[
        [Sequence[float], Sequence[float], Sequence[float]], tuple[float, list[float]]]:
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

    stable = _complements(net)

    def assign(target: Symbol, expr: Expr) -> str:
        return f"    {rename[target]} = {printer.doprint(expr.xreplace(stable).xreplace(rename))}"

    def unpack(group: Sequence[Symbol], source: str) -> str:
        source = f"map(mpmath.mpf, {source})" if careful else source
        return f"    {', '.join(str(rename[s]) for s in group)}, = {source}"

    lines = ["def gradient(p, x, y):", unpack(net.parameters, "p"), unpack(net.inputs, "x"),
             unpack(net.targets, "y")]
    lines += [assign(s, net.definitions[s]) for s in net.order]
    lines += [assign(d.adjoint[v], d.gradient[v]) for v in d.backward_order]
    grads = ", ".join(str(rename[d.adjoint[p]]) for p in net.parameters)
    lines.append(f"    return {rename[net.loss]}, [{grads}]")
    namespace = dict(MPMATH_HELPERS if careful else FLOAT_HELPERS)
    exec(compile("\n".join(lines), "<derive gradient>", "exec"), namespace)   # our own tape only
    return namespace["gradient"]


def _complements(net: Network) -> dict[Expr, Expr]:
    """1 − a, ln a and ln(1 − a) rewritten so that no digit is lost where a is close to 1.

    σ(z) rounds to 1.0 in doubles from z ≈ 37 on, and 1 − a is then 0 although σ(−z) is not;
    likewise 1 − tanh²z = 1/cosh²z, and for a softmax 1 − aᵢ is the sum of the other units.
    The exact path does not need this: it works with 60 digits or more (see ``_sample``).
    """
    out: dict[Expr, Expr] = {}
    for l, name in enumerate(net.spec.activations):
        units = list(zip(net.nets[l], net.activations[l]))
        for z, a in units:
            if name == "sigmoid":
                out |= {sp.log(a): -Softplus(-z), sp.log(1 - a): -Softplus(z), 1 - a: Sigmoid(-z)}
            elif name == "tanh":
                out[1 - a**2] = 1 / sp.cosh(z) ** 2
            elif name == "softmax" and len(units) > 1:
                others = sp.Add(*(b for _, b in units if b != a))
                out |= {sp.log(a): log1p(-others), 1 - a: others}
    return out


class SampleGradient:
    """One sample's loss and gradient in doubles, falling back to mpmath where doubles fail.

    A sigmoid output that rounds to 1.0 makes ln(1 − o) and 1/(1 − o) of the cross-entropy fail
    in doubles although the true values are finite; a softmax input above 709 overflows e^z.
    Such a sample is redone with mpmath at rising precision until two precisions agree, so
    the doubles returned are the true values rounded, and only a true overflow is divergence.
    """

    DIGITS = (30, 120, 480, 1920, 7680)

    def __init__(self, d: Derivation):
        self.derivation, self.fast, self.careful = d, compile_gradient(d), None
        self.start = 0              # the lowest precision that sufficed last time: training drifts slowly

    def __call__(self, p: Sequence[float], x: Sequence[float], y: Sequence[float]) -> tuple[float, list[float]]:
        try:
            e, g = self.fast(p, x, y)
            if math.isfinite(e) and all(map(math.isfinite, g)):
                return e, g
        except (OverflowError, ValueError, ZeroDivisionError):
            pass
        return self.slow(p, x, y)

    def slow(self, p, x, y) -> tuple[float, list[float]]:
        self.careful = self.careful or compile_gradient(self.derivation, careful=True)
        previous = None
        for level in range(self.start, len(self.DIGITS)):
            with mpmath.workdps(self.DIGITS[level]):
                try:
                    e, g = self.careful(p, x, y)
                    result = float(e), [float(v) for v in g]
                except (ValueError, ZeroDivisionError):     # 1 − o still 0 at these digits
                    previous = None
                    continue
            if result == previous:
                self.start = level - 1
                return result
            previous = result
        raise OverflowError


def descend(d: Derivation, params: list[float], steps: int, done: int = 0) -> tuple[list[float], list[float]]:
    """Run ``steps`` gradient-descent steps from ``params``; the loss before and after each.

    ``done`` counts the steps already taken to reach ``params``, for the error message.
    """
    net, spec = d.network, d.network.spec
    gradient = SampleGradient(d)
    rate = float(spec.learning_rate)
    fixed = frozen(d)
    trainable = [i for i, p in enumerate(net.parameters) if p not in fixed]
    data = [([float(v) for v in x], [float(v) for v in y]) for x, y in zip(spec.x, spec.y)]
    losses = []
    try:
        for step in range(steps + 1):
            loss, total = 0.0, [0.0] * len(params)
            for x, y in data:
                e, g = gradient(params, x, y)
                loss += e
                total = [t + gi for t, gi in zip(total, g)]
            if not (math.isfinite(loss) and all(map(math.isfinite, total))):
                raise OverflowError
            losses.append(loss)
            if step < steps:
                for i in trainable:
                    params[i] -= rate * total[i]
    except OverflowError:
        raise SpecError(spec.source, "[train].learning_rate",
                        f"after step {done + len(losses)} the loss is no longer a finite double (the steps "
                        f"diverged); expected a smaller learning rate or fewer steps") from None
    return losses, params
