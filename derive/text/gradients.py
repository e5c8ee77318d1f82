"""A parameter's derivative one line from its δ (δ_j a_k, δ_j for a bias), as data: checked and printed from the same terms."""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import mpmath
import sympy as sp
from mpmath import libmp
from sympy import Expr, Symbol

from derive.model.backprop import Derivation
from derive.numeric import arithmetic
from derive.numeric.arithmetic import GUARD, Point, close, total
from derive.numeric.rounding import Number
from derive.numeric.values import PRECISION


class Term(NamedTuple):
    """δ of a unit the parameter feeds, times what the parameter multiplies there (None: 1, a bias): a symbol in
    the rules ``terms`` makes, any local derivative in ``edge_terms``."""

    delta: Symbol
    times: Expr | None


def edge_terms(d: Derivation, p: Symbol) -> tuple[Term, ...]:
    """The rule Σ δ_child · ∂child/∂p, one term per edge from p, whatever its local derivative."""
    return tuple(Term(d.adjoint[e.child], None if e.local == 1 else e.local) for e in d.edges[p])


def terms(d: Derivation, p: Symbol) -> tuple[Term, ...] | None:
    """``edge_terms`` where every local derivative is 1 or one symbol; None otherwise (the caller prints that rule
    with SymPy)."""
    rule = edge_terms(d, p)
    return rule if all(t.times is None or t.times.is_Symbol for t in rule) else None


def expression(rule: Sequence[Term]) -> Expr:
    """The rule as SymPy, δ before what it multiplies (as the chain reads; SymPy's own order puts a before δ)."""
    parts = [t.delta if t.times is None else sp.Mul(t.delta, t.times, evaluate=False) for t in rule]
    return sp.Add(*parts, evaluate=False) if len(parts) > 1 else parts[0]


def rule_tex(rule: Sequence[Term], names: Mapping[Symbol, str]) -> str:
    """δ_{o_{1}} h_{2}, or δ_{o_{1}} + δ_{o_{2}} for a shared bias: the names as the printer writes this product."""
    return " + ".join(names[t.delta] if t.times is None else f"{names[t.delta]} {names[t.times]}" for t in rule)


def numbers_tex(rule: Sequence[Term], shown: Mapping[Symbol, Number]) -> tuple[str, bool]:
    """The rule with each symbol's shown value (bracketed inside a product or a sum); whether all are exact."""
    alone = len(rule) == 1 and rule[0].times is None
    used = [shown[s] for t in rule for s in (t.delta, t.times) if s is not None]
    text = " + ".join(shown[t.delta].factor if t.times is None else
                      rf"{shown[t.delta].factor} \cdot {shown[t.times].factor}" for t in rule)
    return (used[0].tex if alone else text), all(n.exact for n in used)


def products(rule: Sequence[Term], point: Point) -> list[list[arithmetic.Number]]:
    """The rule's terms at the point's numbers, each a list of its factors."""
    return [[point[t.delta]] + ([] if t.times is None else [point[t.times]]) for t in rule]


def magnitude(rule: Sequence[Term], point: Point) -> arithmetic.Number:
    """Σ |δ a| over the rule's terms: the scale a difference is measured at where the terms cancel (a shared bias's
    δ sum); for one product it is the value itself, so a tiny value (beside a saturated unit, 10^−16854) is still
    compared to its own digits, not to 1."""
    return _size(products(rule, point))


def _size(terms: list[list[arithmetic.Number]]) -> arithmetic.Number:
    return total([[abs(f) for f in factors] for factors in terms])


def hold(rules: Mapping[Symbol, Sequence[Term]], adjoint: Mapping[Symbol, Symbol], point: Point, digits: int) -> bool:
    """Whether every parameter's rule, at the point's numbers, is the chain rule's value (within ``digits`` of its
    magnitude): a layer's rules at once, each number converted once for the sample. Unsupported where a value is
    no finite number (the caller checks those rules one by one, in SymPy)."""
    with mpmath.workprec(libmp.dps_to_prec(PRECISION) + GUARD):
        for p, rule in rules.items():
            terms = products(rule, point)
            if not close(total(terms), point[adjoint[p]], digits, _size(terms)):
                return False
        return True
