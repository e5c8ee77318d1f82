"""A number worked out by hand from rounded factors: the precision it can claim, and the factors that are no value of the network."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Mapping

import sympy as sp
from sympy import Expr, Symbol

from derive.check.claims import Literal, Rhs, SampleSum
from derive.check.quantities import Model, Quantity
from derive.numeric.values import exact

MAX_EDGES = 400             # networks up to this many local factors offer every sub-expression as a hand value


@dataclass(frozen=True)
class Stray:
    """A factor of the claim that is no value of the network to the decimals it is written with."""

    literal: Literal
    nearest: str            # the chain's (or the network's) value it most likely stands for, by its plain name
    value: Fraction


def _fraction(value: Expr) -> Fraction:
    r = sp.Rational(exact(value))
    return Fraction(int(r.p), int(r.q))


def _unit(literal: Literal) -> Fraction:
    return Fraction(1, 10 ** (literal.decimals or 0))


def exact_numbers(m: Model) -> set[Fraction]:
    """The spec's own numbers: a literal equal to one (w5 = 0.4, η = 0.5) is exact, not rounded. Once per model."""
    if ("exact numbers",) not in m._memo:
        m._memo[("exact numbers",)] = _exact_numbers(m)
    return m._memo[("exact numbers",)]


def _exact_numbers(m: Model) -> set[Fraction]:
    spec = m.spec
    numbers = [*spec.optimizer.rates.values(), spec.optimizer.weight_decay, *(v for row in spec.x for v in row),
               *(v for row in spec.y for v in row)]
    numbers += list(m.exact_steps[0].parameters.values())
    return {abs(_fraction(sp.sympify(v))) for v in numbers}


def propagated(m: Model, rhs: Rhs) -> Fraction:
    """How far the expression can be from the exact value its rounded literals stand for, to first order:
    Σ |∂v/∂ℓ| · ½ unit of ℓ's last decimal, over the literals that are rounded (not the spec's own numbers)."""
    if rhs.tracked is None:
        return Fraction(0)
    given = exact_numbers(m)
    values: dict[Symbol, Expr] = {lit.symbol: lit.value for lit in rhs.literals}
    values.update(m.constants)
    total = Fraction(0)
    for lit in rhs.literals:
        if lit.decimals is None or abs(Fraction(int(lit.value.p), int(lit.value.q))) in given:
            continue
        # a literal under Σₙ counts once per sample: Σₙ c = N c for the constant slope c
        slope = sp.diff(rhs.tracked, lit.symbol).xreplace(values).replace(SampleSum, lambda e: m.N * e)
        total += abs(_fraction(slope)) * _unit(lit) / 2
    return total


def strays(m: Model, q: Quantity, n: int, rhs: Rhs) -> tuple[Stray, ...]:
    """The rounded literals that are no value of the network rounded or cut to their decimals (a student
    who rounds or cuts 0.593270 writes 0.59 or 0.593, never 0.61)."""
    given = exact_numbers(m)
    if ("hand values",) not in m._memo:        # the same for every claim of a class: evaluated once
        m._memo[("hand values",)] = dict(_hand_values(m))
    candidates = m._memo[("hand values",)]
    chain = dict(_chain_values(m, q))
    out, matched = [], set()
    for lit in rhs.literals:
        value = abs(Fraction(int(lit.value.p), int(lit.value.q)))
        if lit.decimals is None or value in given or value == 0:
            continue
        places = lit.decimals
        matched |= {k for k, c in chain.items() if _written_as(c, places, value)}
        if not any(_written_as(c, places, value) for c in candidates.values()):
            out.append(lit)
    return tuple(Stray(lit, *_nearest(lit, chain, matched, candidates)) for lit in out)


def _written_as(value: Fraction, places: int, literal: Fraction) -> bool:
    """Whether a student who rounds (half away from zero) or cuts |value| to ``places`` decimals writes ``literal``."""
    scaled = abs(value) * 10 ** places
    return literal * 10 ** places in (int(scaled + Fraction(1, 2)), int(scaled))


def _nearest(lit: Literal, chain: Mapping[str, Fraction], matched: set[str],
             candidates: Mapping[str, Fraction]) -> tuple[str, Fraction]:
    """The value a stray factor most likely stands for: a factor of the quantity's own chain that no other
    factor stands for (h1 in ∂E/∂w5 = ∂E/∂o1 · ∂o1/∂z · h1), else any value of the network, the nearest."""
    value = abs(Fraction(int(lit.value.p), int(lit.value.q)))
    own = {k: v for k, v in chain.items() if k not in matched} or dict(chain) or dict(candidates)
    name = min(own, key=lambda k: (abs(abs(own[k]) - value) / max(abs(own[k]), value), k))
    return name, own[name]


def _environments(m: Model) -> Iterator[dict[Symbol, Expr]]:
    first = m.exact_steps[0]
    for env in first.samples:
        yield {**first.parameters, **env}


def _hand_values(m: Model) -> Iterator[tuple[str, Fraction]]:
    """Every value a hand calculation writes down: each named quantity of each sample, each gradient and
    update, and (on networks of moderate size) each sub-expression of each local factor, as 1 − o1."""
    first = m.exact_steps[0]
    for p in m.net.parameters:
        yield f"dE/d{m.plain[p]}", _fraction(first.gradient[p])
        yield f"{m.plain[p]}'", _fraction(first.updated[p])
    yield "E", _fraction(first.loss)
    names = {s: n.plain for s, n in m.d.names.items()}
    edges = [e for es in m.d.edges.values() for e in es]
    parts = {sub for e in edges for sub in sp.preorder_traversal(e.local)
             if isinstance(sub, Expr) and sub.free_symbols} if len(edges) <= MAX_EDGES else set()
    for k, env in enumerate(_environments(m)):
        for s, v in env.items():
            if s in names and v.is_number:
                yield f"{names[s]}[{k + 1}]" if m.N > 1 else names[s], _fraction(v)
        for sub in sorted(parts, key=sp.default_sort_key):
            value = m.d.safe(sub).xreplace(env)
            if value.is_number and value.is_finite:
                yield str(sub), _fraction(value)


def _chain_values(m: Model, q: Quantity) -> Iterator[tuple[str, Fraction]]:
    """The local factors of the quantity's single chain of partial derivatives, named ∂child/∂parent."""
    if q.kind != "gradient" or m.d.path_count(q.target) != 1:
        return
    env = next(_environments(m))
    for e in m.d.chains(q.target)[0]:
        child = "E" if e.child == m.net.loss else m.plain[e.child]
        parent = m.plain.get(e.parent, str(e.parent))
        local = m.d.safe(e.local).xreplace(env)
        if local.is_number:
            yield (m.plain[e.local] if e.local in m.plain else f"d{child}/d{parent}"), _fraction(local)
