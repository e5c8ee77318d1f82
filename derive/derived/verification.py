"""The verification note: the chain rule's gradients checked by finite differences and sympy.diff."""

from __future__ import annotations

import gc
import keyword
import math
import random
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Collection, Iterator, Mapping, Sequence

import mpmath
import sympy as sp
from sympy import Expr, Symbol
from sympy.printing.pycode import MpmathPrinter

from derive.derived.solution import Solution
from derive.model.network import Network, per_kind
from derive.model.registry import NUMERIC
from derive.numeric.arithmetic import mpmath_form
from derive.numeric.rounding import Number, number
from derive.numeric.values import Step, digits, exact, saturation_digits


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


Steps = Sequence[tuple[int, list[int], Any]]      # (where a step's value goes, where its arguments are, its function)


def _loss_function(solution: "Solution", base: Mapping[Symbol, object]):
    """E(parameters) at mpmath's working precision: the forward definitions compiled for mpmath, summed over samples.

    ``loss(params, moved)`` computes again only what the ``moved`` parameters reach, taking every other value from
    the forward pass at ``base`` (the same arithmetic on the same numbers: the same values): a difference in one
    parameter of the output layer recomputes that unit and the loss, not the whole network.
    """
    net = solution.network
    # the values in a list by each symbol's place: a dict keyed by symbols compared them (SymPy's __eq__) wherever
    # an equal symbol was another object (a network of more symbols than SymPy's cache keeps, a kept compilation)
    where = {s: i for i, s in enumerate(dict.fromkeys([*base, *net.inputs, *net.targets, *net.order]))}
    steps = [(where[s], [where[a] for a in args], f) for s, (args, f) in zip(net.order, _compiled(net))]
    at_base = []
    for x, y in zip(solution.spec.x, solution.spec.y):
        env: list[object] = [None] * len(where)
        for p, v in base.items():
            env[where[p]] = v
        for k, v in [*zip(net.inputs, x), *zip(net.targets, y)]:
            env[where[k]] = _mp(v)          # converted once, at the working precision the differences are taken at
        _forward(steps, env, where[net.loss])
        at_base.append(env)
    reach: dict[tuple[Symbol, ...], Steps] = {}

    def loss(params: Mapping[Symbol, object], moved: Collection[Symbol]):
        # what the moved parameters reach is the same at every sample and on either side of a difference
        key = tuple(moved)
        if key not in reach:
            reach[key] = _reached(steps, {where[p] for p in moved})
        total = mpmath.mpf(0)
        for env in at_base:
            env = env.copy()
            for p in moved:
                env[where[p]] = params[p]
            total += _forward(reach[key], env, where[net.loss])
        return total

    return loss


def _forward(steps: Steps, env: list[object], loss: int) -> object:
    """The ``steps`` computed in order into ``env``; then the value at ``loss``."""
    for s, args, f in steps:
        env[s] = f(*[env[a] for a in args])
    return env[loss]


def _reached(steps: Steps, moved: set[int]) -> Steps:
    """The steps whose value depends on the ``moved`` places, in order: the ones a moved parameter changes."""
    reached, out = set(moved), []
    for step in steps:
        if reached.intersection(step[1]):
            out.append(step)
            reached.add(step[0])
    return out


def _compiled(net: Network) -> tuple[tuple[list[Symbol], Any], ...]:
    """Each forward definition compiled for mpmath (see ``_compiled_definitions``)."""
    return _compiled_definitions(tuple((s, net.definitions[s]) for s in net.order))


@lru_cache(maxsize=16)
def _compiled_definitions(definitions: tuple[tuple[Symbol, Expr], ...]) -> tuple[tuple[list[Symbol], Any], ...]:
    """Each definition as a function of its arguments: a net input or an activation of one net input directly in
    mpmath (``_direct``), anything else (a softmax, the loss) as the function
    ``sp.lambdify(args, expr, modules=[our functions, "mpmath"])`` makes, the same printer and code, compiled in
    one piece (lambdify's own work around the code, made again for every unit, was three quarters of its time).

    Kept for networks of the same definitions (the same layers and activations whatever the numbers): a document's
    other formats and an exam's variants need not print the code again, a tenth of a wide network's document.
    """
    functions = {name: form.mp for name, form in NUMERIC.items()}
    namespace = dict(sp.lambdify([], 0, modules=[functions, "mpmath"]).__globals__)      # lambdify's namespace
    printer = MpmathPrinter({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                             "user_functions": {k: k for k in functions}})
    out: list[tuple[list[Symbol], Any]] = []     # a function, or the name of one in the source
    source = []
    for i, (s, expr) in enumerate(definitions):
        direct = _direct(expr)
        if direct is not None:
            out.append(direct)
            continue
        args = sorted(expr.free_symbols, key=lambda x: x.name)
        if all(_plain(a, printer) for a in args):
            code = printer.doprint(expr)
            code = f"({code})" if "\n" in code else code
            source.append(f"def step{i}({', '.join(a.name for a in args)}):\n    return {code}\n")
            out.append((args, f"step{i}"))
        else:       # a name lambdify would replace by a Dummy: lambdify itself
            out.append((args, sp.lambdify(args, expr, modules=[functions, "mpmath"])))
    exec(compile("".join(source), "<derive-verification>", "exec"), namespace)
    for k in (k for mod, keys in printer.module_imports.items() for k in keys):      # as lambdify imports them
        namespace.setdefault(k, getattr(mpmath, k))
    return tuple((args, namespace[f] if isinstance(f, str) else f) for args, f in out)


def _direct(expr: Expr) -> tuple[list[Symbol], Any] | None:
    """A unit's definition computed without printing code for it (the printer ordered the terms of every sum, most
    of a wide network's first document): a net input Σ w a + b as the dot product Σ w a, rounded once, plus the
    bias; an activation of one net input as its mpmath function. None for anything else (a softmax, the loss),
    which is printed."""
    if isinstance(expr, sp.Add) and all(_weighted(t) or t.is_Symbol for t in expr.args):
        pairs = [t.args for t in expr.args if not t.is_Symbol]
        alone = [t for t in expr.args if t.is_Symbol]
        k = len(pairs)
        return [a for pair in pairs for a in pair] + alone, lambda *v: mpmath.fdot(v[0:2 * k:2], v[1:2 * k:2]) + \
            mpmath.fsum(v[2 * k:])
    function = mpmath_form(expr) if isinstance(expr, sp.Function) else None
    if function is not None and len(expr.args) == 1 and expr.args[0].is_Symbol:
        return [expr.args[0]], function
    return None


def _weighted(term: Expr) -> bool:
    """w·a: a product of two symbols (a weight and what it multiplies)."""
    return isinstance(term, sp.Mul) and len(term.args) == 2 and all(a.is_Symbol for a in term.args)


def _plain(symbol: Symbol, printer: MpmathPrinter) -> bool:
    """A symbol lambdify keeps by its name: a Python identifier its printer writes as it is.

    By the printer's own method for one expression: ``doprint`` adds only what a symbol never has (comments on
    what the code cannot say, constants to declare) after a walk through the whole expression, which was a fifth
    of the compilation for the thousand-odd symbols of a wide network.
    """
    return symbol.name.isidentifier() and not keyword.iskeyword(symbol.name) and printer._print(symbol) == symbol.name


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
    work = _working_digits(solution, step)
    singles, directions = _probes(params)
    with mpmath.workdps(work), _collector_paused():
        base = {p: _mp(step.parameters[p]) for p in params}
        loss = _loss_function(solution, base)
        gradient = {p: _mp(step.gradient[p]) for p in params}
        alongs = [{p: mpmath.mpf(1)} for p in singles] + [{p: _mp(vp) for p, vp in v.items()} for v in directions]
        differences = [_directional(loss, base, gradient, v) for v in alongs]
        # a saturated unit's loss can be ±∞ or 0/0 at every precision there is: such a difference is no evidence
        unevaluable = sum(1 for d in differences if not mpmath.isfinite(d))
        worst = max([d for d in differences if mpmath.isfinite(d)], default=mpmath.mpf(0))
        finite = number(sp.Float(worst, work), 2, inexact=True) if worst else number(0)
    finite_note = (f"central differences $(E(p + h) - E(p - h))/(2h)$ with $h = 10^{{-{FD_STEP}}}$, computed "
                   f"with {work} significant digits, for each of the {len(params)} parameters")
    if directions:
        finite_note = (f"central differences with $h = 10^{{-{FD_STEP}}}$, computed with {work} significant digits, "
                       f"for {len(singles)} of the {len(params)} parameters one by one (spread over every layer) and "
                       f"along {len(directions)} random directions $v$ that move every parameter at once, each "
                       f"$(E(p + hv) - E(p - hv))/(2h)$ against $\\nabla E \\cdot v$")
    if unevaluable:
        finite_note += (f"; {unevaluable} of the {len(differences)} differences could not be taken, because a "
                        f"saturated unit makes the loss infinite or 0/0 in plain arithmetic at every precision "
                        f"(the chain rule's saturation-safe values stand there alone)")
    direct = None
    if len(params) * n <= DIRECT_LIMIT and spec.depth <= 2:
        direct_value = _direct_difference(solution, step, work)
        direct = number(direct_value, 2, inexact=not direct_value.is_Rational) if direct_value else number(0)
        evaluated = "exactly" if direct_value.is_Rational else f"with {work} significant digits"
        direct_note = ("SymPy differentiated the loss written out in the parameters alone (every $z$ and $a$ "
                       "substituted, no named intermediates) and evaluated the derivatives at the initial "
                       f"parameters {evaluated}")
    else:
        direct_note = (f"differentiating the fully expanded loss is skipped for a network of {spec.depth} "
                       f"layers, {len(params)} parameters and {n} sample{'s' if n > 1 else ''}: the "
                       f"expression grows too large; the finite differences cover every parameter")
    carried = None
    if solution.carry is not None:
        worst_carried = max(abs(exact(shown.gradient[p] - step.gradient[p])) for p in params)
        carried = number(worst_carried, 2, inexact=not worst_carried.is_Rational) if worst_carried else number(0)
    return Verification(len(params), direct, direct_note, finite, finite_note, carried)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while the differences are taken: their tens of thousands of numbers
    live for an instant and make no cycles (reference counting frees them), but their count set off the
    collector's passes over every object of the solution and the document, which cost as much as the arithmetic
    (16-16-16-16: 0.06 s of the differences' 0.12 s)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _working_digits(solution: "Solution", step: Step) -> int:
    """60 digits, and as many more as a saturated unit shares with its bound.

    The loss the differences are taken of is written plainly (ln(1 − o) with o = 1 − 10^−1303),
    so it needs those digits too; the engine's own precision (rising fourfold, to 3,840) can be
    far more than that, and every digit beyond makes each e^z dearer.
    """
    engine = max([FD_DIGITS] + [digits(v) for env in step.samples for v in env.values()])
    shared = max((saturation_digits(solution.network, env) for env in step.samples), default=0.0)
    if not math.isfinite(shared):
        return engine
    return max(FD_DIGITS, min(engine, FD_DIGITS + math.ceil(shared)))


FD_SINGLE = 32          # up to this many parameters, each by a central difference of its own
FD_DIRECTIONS = 4       # beyond: FD_SINGLE of them, and random directions that move all (a wrong component
                        # shows in ∇E·v for almost every v, and each direction costs two losses, not 2P)


def _probes(params: Sequence[Symbol]) -> tuple[list[Symbol], list[dict[Symbol, sp.Rational]]]:
    """The parameters checked one by one, and the random directions (seeded: the same document every run)."""
    if len(params) <= FD_SINGLE:
        return list(params), []
    spread = dict.fromkeys(params[round(i * (len(params) - 1) / (FD_SINGLE - 1))] for i in range(FD_SINGLE))
    directions = []
    for k in range(FD_DIRECTIONS):
        rng = random.Random(f"derive-verify:{k}")
        directions.append({p: sp.Rational(rng.randint(-1000, 1000), 1000) for p in params})
    return list(spread), directions


def _directional(loss, base: Mapping[Symbol, Any], gradient: Mapping[Symbol, Any], along: Mapping[Symbol, Any]):
    """|(E(p + hv) − E(p − hv))/(2h) − ∇E·v| at mpmath's working precision, v = ``along`` (mpmath numbers)."""
    h = mpmath.mpf(10) ** -FD_STEP
    up = {p: base[p] + h * vp for p, vp in along.items()}      # the loss reads only the moved parameters
    down = {p: base[p] - h * vp for p, vp in along.items()}
    estimate = (loss(up, along.keys()) - loss(down, along.keys())) / (2 * h)
    return abs(estimate - mpmath.fsum(gradient[p] * vp for p, vp in along.items()))


@dataclass
class _Derivatives:
    """One sample's loss written out in the parameters and the inputs alone (every z and a substituted, no named
    intermediates), at the sample's targets, and its derivative for each parameter by sympy.diff."""

    net: Network
    loss: Expr
    derivatives: tuple[Expr, ...]

    @cached_property
    def compiled(self) -> Any:
        """The derivatives as one mpmath function of the parameters and the inputs, their common subexpressions
        once (SymPy's evalf of each whole derivative took 12 s where a saturated unit needs thousands of digits:
        every e^z of the expansion again in every derivative)."""
        functions = {name: form.mp for name, form in NUMERIC.items()}
        return sp.lambdify([*self.net.parameters, *self.net.inputs], list(self.derivatives),
                           modules=[functions, "mpmath"], cse=True)


@per_kind
def _loss_derivatives(net: Network, targets: tuple[Expr, ...]) -> _Derivatives:
    """Once per kind of network and row of targets: the targets are numbers (a one-hot row drops the terms its
    zeros multiply: a softmax's derivatives were ten times longer with symbols there), the inputs symbols (numbers
    there made no shorter derivatives, and a kind's networks mostly differ in them)."""
    expr = net.definitions[net.loss]
    for s in reversed(net.order[:-1]):
        expr = expr.xreplace({s: net.definitions[s]})
    expr = expr.xreplace(dict(zip(net.targets, targets)))
    return _Derivatives(net, expr, tuple(sp.diff(expr, p) for p in net.parameters))


def _direct_difference(solution: "Solution", step: Step, work: int) -> Expr:
    """max |derived − sympy.diff(expanded loss)| over the parameters, at the initial parameters: each sample's
    derivatives summed over the batch.

    Derivatives that are rational at rational parameters (linear and ReLU networks) are exact; the others are
    evaluated at ``work`` digits in mpmath (``_Derivatives.compiled``).
    """
    net = solution.network
    params = net.parameters
    samples = [(_loss_derivatives(net, tuple(y)), {**step.parameters, **dict(zip(net.inputs, x))})
               for x, y in zip(solution.spec.x, solution.spec.y)]
    if all(found.loss.xreplace(at).is_Rational for found, at in samples):     # no e^z: a linear or ReLU network
        exact_ = [sp.Add(*(found.derivatives[i].xreplace(at) for found, at in samples)) for i in range(len(params))]
        if all(v.is_Rational for v in exact_):
            return max((abs(v - step.gradient[p]) for v, p in zip(exact_, params)), default=sp.S.Zero)
    order = [*params, *net.inputs]
    with mpmath.workdps(work):
        each = [found.compiled(*(_mp(at[s]) for s in order)) for found, at in samples]
        direct = [mpmath.fsum(column) for column in zip(*each)]
        worst = max(abs(d - _mp(step.gradient[p])) for d, p in zip(direct, params))
        return sp.Float(worst, work)
