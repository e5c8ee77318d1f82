"""Numbers: the exact first step (rationals, or 60 digits where exp enters); later steps run on tape.py."""

from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Mapping

import mpmath
from mpmath import libmp
import sympy as sp
from sympy import Expr, Symbol

from derive.errors import SpecError
from derive.model.backprop import Derivation
from derive.model.network import Network
from derive.numeric import arithmetic
from derive.numeric.arithmetic import Point, Unsupported, value_at
from derive.numeric.rounding import Rounding, number
from derive.numeric.rule import batch_ratio, decayed, frozen, learning_rates
from derive.numeric.tape import descend

PRECISION = 60          # significant digits kept for values that are not rational


@dataclass(frozen=True, eq=False)
class Step:
    """One gradient-descent step on the whole batch, every number exact or at PRECISION digits.

    ``samples[n]`` maps every symbol of the derivation (x, y, z, a, the loss contribution and
    each adjoint symbol) to its value for sample n.
    """

    parameters: dict[Symbol, Expr]
    samples: tuple[dict[Symbol, Expr], ...]
    loss: Expr                      # E over every sample (the data's loss, without weight decay)
    gradient: dict[Symbol, Expr]    # of E
    updated: dict[Symbol, Expr]     # after one update on ``batch``
    # with carried rounding: per sample, the symbols whose value rounding changed, and of the
    # totals ("loss", None), ("gradient", p), ("updated", p) those it changed; a document writes ≈ there
    rounded: tuple[frozenset, ...] = ()
    rounded_totals: frozenset = frozenset()
    batch: tuple[int, ...] = ()     # the samples the update used (0-based): all of them but online or in mini-batches
    step_gradient: dict[Symbol, Expr] | None = None     # the gradient the update used, where not ``objective_gradient``
    penalty: Expr = sp.S.Zero       # weight decay: λ/2 Σ w², added to E in what the descent minimises
    decay: dict[Symbol, Expr] | None = None     # weight decay: λw, added to each ∂E/∂w

    @property
    def objective(self) -> Expr:
        """What the descent minimises: E, plus λ/2 Σ w² with weight decay."""
        return self.loss + self.penalty

    @cached_property         # read once per parameter by the report: built once
    def objective_gradient(self) -> dict[Symbol, Expr]:
        """The objective's gradient: ∂E/∂p, plus λp for each decayed parameter."""
        decay = self.decay or {}
        return {p: g + decay[p] if p in decay else g for p, g in self.gradient.items()}

    @property
    def descent(self) -> dict[Symbol, Expr]:
        """The gradient the update followed: the objective's, or its batch's online and in mini-batches."""
        return self.objective_gradient if self.step_gradient is None else self.step_gradient


@dataclass(frozen=True, eq=False)
class Forward:
    """The network at one set of parameters: every sample's forward values and the loss, no backward pass.

    What the first update leads to (the outputs and the loss after it), and what the last step's parameters give.
    """

    parameters: dict[Symbol, Expr]
    samples: tuple[dict[Symbol, Expr], ...]     # per sample: x, y, every z and a, the loss contribution
    loss: Expr
    penalty: Expr = sp.S.Zero
    rounded: tuple[frozenset, ...] = ()         # with carried rounding: per sample, the symbols it changed

    @property
    def objective(self) -> Expr:
        """What the descent minimises: E, plus λ/2 Σ w² with weight decay."""
        return self.loss + self.penalty


@dataclass(frozen=True, eq=False)
class Training:
    """The first step in full, the forward pass after it, and the loss after every step."""

    first: Step
    after: Forward                  # the network evaluated at the updated parameters
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


def value(expr: Expr, env: Mapping[Symbol, Expr], digits: int = PRECISION, point: Point | None = None) -> Expr:
    """``expr`` at one sample's numbers, as ``exact`` would give it after substituting ``env``: by the arithmetic of
    arithmetic.py at ``point`` (the same numbers, converted once), or by SymPy where that has no rule."""
    if point is not None:
        try:
            return value_at(expr, point, digits)
        except Unsupported:
            pass
    return exact(expr.xreplace(env), digits)


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
            values[b] = spec.biases[l][0 if spec.bias.of(l) == "shared" else j]
    return values


def evaluate(d: Derivation, parameters: Mapping[Symbol, Expr], carry: Rounding | None = None) -> Step:
    """Forward pass, loss and backward pass for every sample, then the gradient and the first update.

    With ``carry``, every value is rounded (to significant digits or decimal places) as soon as it is
    computed and used rounded from then on, as in a hand calculation: the numbers a document
    prints are then the numbers the next line uses. The first update starts from velocity 0, so
    momentum does not change it.
    """
    net, spec = d.network, d.network.spec
    keep = Carry(carry)
    samples, loss, penalty = _samples(d, parameters, keep, backward=True)
    gradient = {p: keep(sp.Add(*(env[d.adjoint[p]] for env in samples)), ("gradient", p)) for p in net.parameters}
    lam = decayed(d)
    decay = {p: keep(lam[p] * parameters[p], ("decay", p)) for p in lam} if lam else None
    batch = next(spec.optimizer.order())
    descent = None
    if spec.optimizer.stochastic:
        ratio = batch_ratio(spec, len(batch))
        descent = {p: keep(ratio * sp.Add(*(samples[n][d.adjoint[p]] for n in batch)) + lam.get(p, 0) * parameters[p],
                           ("step", p)) for p in net.parameters}
    step = Step(dict(parameters), tuple(samples), loss, gradient, {}, batch=batch, step_gradient=descent,
                penalty=penalty, decay=decay)
    fixed, rates, slope = frozen(d), learning_rates(d), step.descent
    with_decay = {p: keep(g, ("total", p)) for p, g in slope.items()} if decay and descent is None else slope
    carried = momentum_carried(d)
    updated = {p: v if p in fixed else keep(v + carried[p] - rates[p] * with_decay[p], ("updated", p))
               for p, v in parameters.items()}
    return replace(step, updated=updated, rounded=tuple(keep.rounded), rounded_totals=frozenset(keep.changed))


def forward(d: Derivation, parameters: Mapping[Symbol, Expr], carry: Rounding | None = None) -> Forward:
    """The forward pass and the loss for every sample at ``parameters``, computed as ``evaluate`` computes them."""
    keep = Carry(carry)
    samples, loss, penalty = _samples(d, parameters, keep, backward=False)
    return Forward(dict(parameters), samples, loss, penalty, tuple(keep.rounded))


def _samples(d: Derivation, parameters: Mapping[Symbol, Expr], keep: Carry,
             backward: bool) -> tuple[tuple[dict[Symbol, Expr], ...], Expr, Expr]:
    """Every sample's values (the backward pass too where ``backward``), the loss E and weight decay's λ/2 Σ w²."""
    net, spec = d.network, d.network.spec
    samples = tuple(keep.sample(_sample(d, {**parameters, **dict(zip(net.inputs, x)), **dict(zip(net.targets, y))},
                                        keep, backward)) for x, y in zip(spec.x, spec.y))
    loss = keep(sp.Add(*(env[net.loss] for env in samples)), ("loss", None))
    lam = decayed(d)
    penalty = keep(sp.Add(*(lam[p] / 2 * parameters[p] ** 2 for p in lam)), ("penalty", None))
    return samples, loss, penalty


class Carry:
    """Rounding as a hand calculation does it (to significant digits or decimal places), or none for None.

    It remembers what rounding changed, so a document can write ≈ before those values only.
    """

    def __init__(self, rounding: Rounding | None):
        self.rounding = rounding
        self.changed: set[Symbol | tuple[str, Symbol | None]] = set()
        self.rounded: list[frozenset[Symbol | tuple[str, Symbol | None]]] = []

    def __call__(self, value: Expr, key=None) -> Expr:
        if self.rounding is None:
            return value
        shown = self.rounding.round(value)
        if shown != value and key is not None:
            self.changed.add(key)
        return shown

    def sample(self, env: dict[Symbol, Expr]) -> dict[Symbol, Expr]:
        """Close one sample: what rounding changed in it so far is that sample's."""
        self.rounded.append(frozenset(self.changed))
        self.changed = set()
        return env


def _sample(d: Derivation, given: dict[Symbol, Expr], keep: Carry | None = None,
            backward: bool = True) -> dict[Symbol, Expr]:
    """One sample's every value, at PRECISION digits or more where that is not enough.

    Near saturation a fixed number of digits is not enough: σ(z) for z above ~110 rounds to 1
    at 60 digits, and with it 1 − a in σ′ = a(1 − a) and ln(1 − o) to 0; an output below
    1e−60 vanishes in ln(1 − o). Such a sample is redone with four times the digits until every
    activation is resolved. With carried rounding (``keep``) every value is rounded instead.
    """
    keep = keep or Carry(None)
    net, digits, carried = d.network, PRECISION, keep.rounding is not None
    while True:
        env = dict(given)
        point = None if carried else Point(given)
        definitions = net.definitions if carried else d.safe_definitions
        for s in net.order:
            env[s] = keep(value(definitions[s], env, digits, point), s)
            if point is not None:
                point[s] = env[s]
        if carried or digits >= MAX_DIGITS or not _unresolved(net, env, digits):
            break
        digits *= 4
    for v in d.backward_order if backward else ():
        adjoint = d.adjoint[v]
        if v in d.vanishing:            # zero by a proof, not the noise of 60 digits
            env[adjoint] = sp.S.Zero
        elif not carried:
            env[adjoint] = value(d.safe_gradient[v], env, digits, point)
        else:                           # each factor rounded as it is written down, then the sum of their products
            upstream = {e.child: d.adjoint[e.child].xreplace(env) for e in d.edges[v]}     # ∂E/∂E = 1
            env[adjoint] = keep(sp.Add(*(upstream[e.child] * keep(exact(d.safe(e.local).xreplace(env)))
                                         for e in d.edges[v])), adjoint)
        if point is not None:
            point[adjoint] = env[adjoint]
    return env


MAX_DIGITS = 3840       # resolves σ(z) up to z ≈ 8,800


def _unresolved(net: Network, env: dict[Symbol, Expr], digits: int) -> bool:
    """Whether an activation lies within the last digits of 1 or −1 or (for a positive one) of 0."""
    return saturation_digits(net, env) > digits - 20


def saturation_digits(net: Network, env: dict[Symbol, Expr]) -> float:
    """How many leading digits an activation shares with its bound: σ(3000) = 1 − 10^−1303 shares 1303.

    Plain arithmetic (1 − a, ln(1 − o)) needs that many digits more than usual; ∞ where the digits
    used could not tell a from its bound at all.
    """
    shared = 0.0
    for l, layer in enumerate(net.activations):
        act = net.activation(l)
        for a in (arithmetic.number(env[a]) for a in layer):
            if act.positive and a != 0:
                shared = max(shared, _shared_digits(abs(a)))
            if act.bounded and not isinstance(a, Fraction) and _near_one(a):
                # 1 − |a| exactly: mpmath's abs and − round to the working precision (53 bits here), and the
                # distance may lie thousands of digits below it
                distance = libmp.mpf_sub(libmp.fone, libmp.mpf_abs(a._mpf_))
                shared = max(shared, _shared_digits(mpmath.mpf(distance)))
    return shared


def _near_one(a: mpmath.mpf) -> bool:
    """|a| in [1/2, 2): the only place where 1 − |a| can share digits with 1. Elsewhere the exact difference is
    not needed, and is not taken: for a = e^−10⁹ (a softmax output after a learning rate of 10⁷) it needs
    a shift of 10⁹ bits, which stopped the process in GMP ("overflow in mpz type")."""
    _, mantissa, exponent, bits = a._mpf_
    return bool(mantissa) and exponent + bits in (0, 1)


def _shared_digits(distance: arithmetic.Number) -> float:
    if distance == 0:
        return math.inf
    return max(0.0, -float(mpmath.log10(abs(arithmetic.as_mpf(distance)))))


def momentum_carried(d: Derivation) -> dict[Symbol, Expr]:
    """μ times the velocity before the first update, per parameter: 0 but where a later update is worked alone."""
    optimizer = d.network.spec.optimizer
    before = optimizer.velocity or (sp.S.Zero,) * len(d.network.parameters)
    return {p: optimizer.momentum * v for p, v in zip(d.network.parameters, before)}


def train(d: Derivation, carry: Rounding | None = None) -> Training:
    """Step 1 exactly (or with carried rounding), then the remaining steps in double precision."""
    first = evaluate(d, initial_parameters(d), carry)
    after = forward(d, first.updated, carry)
    history = [float(first.objective), float(after.objective)]
    spec = d.network.spec
    if not math.isfinite(history[0]):       # the data and initial values, not the steps, are too large
        about = number(first.objective, 2, inexact=True).plain
        raise SpecError(spec.source, "[init]", f"the initial loss is about {about}, beyond double precision "
                                               f"(about 1e308); expected smaller initial parameters or inputs")
    params = [float(after.parameters[p]) for p in d.network.parameters]
    steps = spec.steps
    if steps > 1:
        rates = learning_rates(d)
        velocity = [-float(rates[p] * first.descent[p]) for p in d.network.parameters]     # from v = 0
        losses, params = descend(d, params, steps - 1, done=1, fixed=frozen(d), velocity=velocity)
        history += losses[1:]
    return Training(first, after, tuple(history), dict(zip(d.network.parameters, params)))
