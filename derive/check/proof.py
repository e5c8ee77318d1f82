"""An expression claim decided symbolically where SymPy can: proved equal to the truth, or refuted by a difference random points cannot see."""

from __future__ import annotations

from enum import Enum

import sympy as sp
from sympy import Expr

from derive.check.claims import SampleSum
from derive.check.quantities import Model, Quantity

MAX_OPS = 400               # beyond this size the difference is left to the random points (expansion explodes)
SMALL_OPS = 40              # the same for a difference with functions of sums in it (exp, σ, ReLU)


class Decided(Enum):
    PROVED = "proved"           # claim − truth is 0 as an expression (so for every value of the symbols)
    REFUTED = "refuted"         # claim − truth is a polynomial in the independent symbols that is not 0
    OPEN = "open"               # SymPy could not tell: the random points decide, and the verdict says so


def decide(m: Model, q: Quantity, claim: Expr) -> Decided:
    """Compare the claim with the truth as expressions in the network's own names (δ and ∂E/∂a by their
    formulas; a written-out σ(z_o1) read as o1). Once per claim and quantity: a class writes the same ones."""
    key = ("decided", *q.about, q.sample, claim)
    if key not in m._memo:
        m._memo[key] = _decide(m, q, claim)
    return m._memo[key]


def _decide(m: Model, q: Quantity, claim: Expr) -> Decided:
    truth = m.truth(q)
    if isinstance(truth, SampleSum) != isinstance(claim, SampleSum):
        return Decided.OPEN
    if isinstance(truth, SampleSum):
        truth, claim = truth.args[0], claim.args[0]
    if claim.free_symbols & set(m.index_of) or claim.has(SampleSum):
        return Decided.OPEN                 # names of one sample (o[2]): only the points know them apart
    constants = m.constants
    adjoints = {m.d.adjoint[v]: m.d.gradient[v] for v in m.d.backward_order}
    # a written-out definition back to its name (sigmoid(z_o1) is o1): cheap, where expanding names into
    # their definitions makes expressions that no expansion finishes
    names = {definition: name for name, definition in m.net.definitions.items() if not definition.is_Symbol}
    difference = (claim.xreplace(names) - truth).xreplace(constants)
    for _ in range(4 * m.spec.depth + 4):      # δ and ∂E/∂a by their formulas, down to the forward names
        written = difference.xreplace(adjoints)
        if written == difference:
            break
        difference = written
    if difference == 0:
        return Decided.PROVED
    # expanding a rational function of the names is cheap; one with exp, σ or ReLU of sums may never end
    if sp.count_ops(difference) > (MAX_OPS if difference.is_rational_function() else SMALL_OPS):
        return Decided.OPEN
    if _zero(difference):
        return Decided.PROVED
    return Decided.REFUTED if _nonzero_polynomial(m, difference) else Decided.OPEN


def _zero(e: Expr) -> bool:
    try:
        return sp.cancel(sp.expand(e)) == 0
    except (sp.PolynomialError, TypeError, ValueError):
        return False


def _nonzero_polynomial(m: Model, e: Expr) -> bool:
    """A polynomial in the parameters, inputs and targets alone that is not 0 is not 0 for some values."""
    independent = set(m.net.parameters) | set(m.net.inputs) | set(m.net.targets)
    symbols = e.free_symbols
    if not symbols:
        return e.is_zero is False          # a number SymPy can tell from 0 (10^-30); never a mere non-simplification
    return symbols <= independent and e.is_polynomial(*symbols) and sp.expand(e) != 0
