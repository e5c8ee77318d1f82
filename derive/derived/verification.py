"""The verification note: the chain rule's gradients checked by finite differences and sympy.diff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import mpmath
import sympy as sp
from sympy import Expr, Symbol

from derive.derived.solution import Solution
from derive.model.registry import NUMERIC
from derive.numeric.rounding import Number, number
from derive.numeric.values import Step, digits, exact


@dataclass(frozen=True)
class Verification:
    count: int
    direct: Number | None       # largest |derived − sympy.diff of the whole loss|, None if skipped
    direct_note: str
    finite: Number              # largest |derived − central difference|
    finite_note: str
    carried: Number | None = None   # with carried rounding: largest |gradient shown − exact gradient|


DIRECT_LIMIT = 60       # parameters × samples up to which the expanded loss is differentiated directly
                        # (one hidden layer at most: nested activations make the expansion explode)
FD_STEP = 20            # central differences with h = 10^−20
FD_DIGITS = 60          # at 60 digits, or more where the engine needed more (see _verification)


def _loss_function(solution: "Solution"):
    """E(parameters) at mpmath's working precision: the forward definitions compiled for mpmath, summed over samples."""
    net = solution.network
    functions = {name: form.mp for name, form in NUMERIC.items()}
    steps = []
    for s in net.order:
        expr = net.definitions[s]
        args = sorted(expr.free_symbols, key=lambda x: x.name)
        steps.append((s, args, sp.lambdify(args, expr, modules=[functions, "mpmath"])))
    data = [(dict(zip(net.inputs, x)), dict(zip(net.targets, y))) for x, y in zip(solution.spec.x, solution.spec.y)]

    def loss(params: Mapping[Symbol, object]):
        total = mpmath.mpf(0)
        for x, y in data:
            env = {**params, **{k: _mp(v) for k, v in x.items()}, **{k: _mp(v) for k, v in y.items()}}
            for s, args, f in steps:
                env[s] = f(*(env[a] for a in args))
            total += env[net.loss]
        return total

    return loss


def _mp(value):
    value = sp.sympify(value)
    if value.is_Rational:
        return mpmath.mpf(int(value.p)) / int(value.q)
    return mpmath.mpf(sp.Float(value, digits(value))._mpf_)


def verify(solution: "Solution") -> Verification:
    """The chain rule's gradients against finite differences and, on small networks, sympy.diff of
    the loss written out in the parameters; with carried rounding, how far the shown gradients are."""
    params = solution.network.parameters
    n, spec = solution.spec.samples, solution.spec
    # the derivation is checked on its exact values; carried rounding is reported beside them
    shown = solution.training.first
    step = solution.exact_first
    # where the engine needed more than 60 digits (a saturated unit: ln(1 − o) with o = 1 − 1e-45),
    # so does the loss the differences are taken of
    work = max([FD_DIGITS] + [digits(v) for env in step.samples for v in env.values()])
    with mpmath.workdps(work):
        loss = _loss_function(solution)
        base = {p: _mp(step.parameters[p]) for p in params}
        h = mpmath.mpf(10) ** -FD_STEP
        worst = mpmath.mpf(0)
        for p in params:
            up, down = dict(base), dict(base)
            up[p] += h
            down[p] -= h
            estimate = (loss(up) - loss(down)) / (2 * h)
            worst = max(worst, abs(estimate - _mp(step.gradient[p])))
        finite = number(sp.Float(worst, work), 2, inexact=True) if worst else number(0)
    finite_note = (f"central differences $(E(p + h) - E(p - h))/(2h)$ with $h = 10^{{-{FD_STEP}}}$, computed "
                   f"with {work} significant digits, for each of the {len(params)} parameters")
    direct = None
    if len(params) * n <= DIRECT_LIMIT and spec.depth <= 2:
        direct_value = _direct_difference(solution, step)
        direct = number(direct_value, 2, inexact=not direct_value.is_Rational) if direct_value else number(0)
        direct_note = ("SymPy differentiated the loss written out in the parameters alone (every $z$ and $a$ "
                       "substituted, no named intermediates) and evaluated the derivatives at the initial "
                       "parameters")
    else:
        direct_note = (f"differentiating the fully expanded loss is skipped for a network of {spec.depth} "
                       f"layers, {len(params)} parameters and {n} sample{'s' if n > 1 else ''}: the "
                       f"expression grows too large; the finite differences cover every parameter")
    carried = None
    if solution.carry is not None:
        worst_carried = max(abs(exact(shown.gradient[p] - step.gradient[p])) for p in params)
        carried = number(worst_carried, 2, inexact=not worst_carried.is_Rational) if worst_carried else number(0)
    return Verification(len(params), direct, direct_note, finite, finite_note, carried)


def _direct_difference(solution: "Solution", step: Step) -> Expr:
    """max |derived − sympy.diff(expanded loss)| over the parameters, at the initial parameters."""
    net = solution.network
    total = sp.S.Zero
    for x, y in zip(solution.spec.x, solution.spec.y):
        expr = net.definitions[net.loss]
        for s in reversed(net.order[:-1]):
            expr = expr.xreplace({s: net.definitions[s]})
        total += expr.xreplace({**dict(zip(net.inputs, x)), **dict(zip(net.targets, y))})
    worst = sp.S.Zero
    for p in net.parameters:
        direct = exact(sp.diff(total, p).xreplace(step.parameters))
        difference = abs(exact(direct - step.gradient[p]))
        worst = max(worst, difference)
    return worst
