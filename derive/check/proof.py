"""An expression claim decided symbolically where SymPy can: proved equal to the truth, or refuted by a difference random points cannot see."""

from __future__ import annotations

from enum import Enum

import sympy as sp
from sympy import Expr, Symbol

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
    # dE/dw5 in a claim (w5 - eta*dE/dw5) is the gradient's own true expression
    claim = claim.xreplace({g: m.truth(m.gradient_of(p)) for p, g in m.grad.items() if g in claim.free_symbols})
    if claim.free_symbols & set(m.index_of):
        return _decide_by_sample(m, q, claim, truth)
    claim = _sums_outside(claim)
    if isinstance(truth, SampleSum) != isinstance(claim, SampleSum):
        return Decided.OPEN
    if isinstance(truth, SampleSum):
        truth, claim = truth.args[0], claim.args[0]
    return _decide_difference(m, claim, truth, [{}], _own(m, q))


def _decide_by_sample(m: Model, q: Quantity, claim: Expr, truth: Expr) -> Decided:
    """A claim in the names of single samples (o[2], the batch's Σ written out as o[1]·h[1] + o[2]·h[2]):
    the truth written in the same names, sample by sample, and the difference decided as for one sample."""
    if claim.has(SampleSum):
        return Decided.OPEN
    samples = [_sample_names(m, n) for n in range(m.N)]
    if isinstance(truth, SampleSum):
        truth = sp.Add(*(truth.args[0].xreplace(names) for names in samples))
    elif q.sample is not None:
        truth = truth.xreplace(samples[q.sample])
    elif q.per_sample or truth.free_symbols & m.per_sample:
        return Decided.OPEN             # one value per sample, claimed without naming the sample
    return _decide_difference(m, claim, truth, samples, _own(m, q))


def _own(m: Model, q: Quantity) -> set[Expr]:
    """The names whose definition is the truth itself: E's (and each sample's loss e for a batch's E)."""
    return {q.target, q.symbol} | ({m.net.loss} if q.kind in ("loss", "loss_after") else set())


def _sums_outside(claim: Expr) -> Expr:
    """c·Σₙ f and Σₙ f + Σₙ g as Σₙ (c·f) and Σₙ (f + g): one sum over the samples, as the truth writes it."""
    if claim.is_Mul:
        sums = [f for f in claim.args if isinstance(f, SampleSum)]
        rest = sp.Mul(*(f for f in claim.args if not isinstance(f, SampleSum)))
        if len(sums) == 1 and not rest.has(SampleSum):
            return SampleSum(rest * sums[0].args[0])
    if claim.is_Add and all(isinstance(t, SampleSum) or (t.is_Mul and t.has(SampleSum)) for t in claim.args):
        parts = [_sums_outside(t) for t in claim.args]
        if all(isinstance(p, SampleSum) for p in parts):
            return SampleSum(sp.Add(*(p.args[0] for p in parts)))
    return claim


def _sample_names(m: Model, n: int) -> dict[Expr, Expr]:
    """Every per-sample symbol to its name in sample n (o → o[n + 1]), as a claim writes it."""
    key = ("sample names", n)
    if key not in m._memo:
        m._memo[key] = {s: Symbol(f"{m.display.get(s, s.name)}[{n + 1}]", real=True) for s in m.per_sample}
    return m._memo[key]


def _decide_difference(m: Model, claim: Expr, truth: Expr, samples: list[dict[Expr, Expr]], own: set[Expr]
                       ) -> Decided:
    """claim − truth, with δ and ∂E/∂a replaced by their formulas (in every sample's names when ``samples``
    renames them), proved 0, refuted as a nonzero polynomial, or left open. A definition is read back as its
    name except the quantity's ``own``: the truth of E is its formula, not E."""
    constants = m.constants
    adjoints, names, independent = {}, {}, set(m.net.parameters)
    for renamed in samples:
        adjoints.update({m.d.adjoint[v].xreplace(renamed): m.d.gradient[v].xreplace(renamed)
                         for v in m.d.backward_order})
        # a written-out definition back to its name (sigmoid(z_o1) is o1): cheap, where expanding names into
        # their definitions makes expressions that no expansion finishes
        names.update({definition.xreplace(renamed): name.xreplace(renamed)
                      for name, definition in m.net.definitions.items() if not definition.is_Symbol and name not in own})
        independent |= {s.xreplace(renamed) for s in m.net.inputs + m.net.targets}
    difference = (claim.xreplace(names) - truth.xreplace(names)).xreplace(constants)
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
    return Decided.REFUTED if _nonzero_polynomial(difference, independent) else Decided.OPEN


def _zero(e: Expr) -> bool:
    try:
        return sp.cancel(sp.expand(e)) == 0
    except (sp.PolynomialError, TypeError, ValueError):
        return False


def _nonzero_polynomial(e: Expr, independent: set[Symbol]) -> bool:
    """A polynomial in the parameters, inputs and targets alone that is not 0 is not 0 for some values."""
    symbols = e.free_symbols
    if not symbols:
        return e.is_zero is False          # a number SymPy can tell from 0 (10^-30); never a mere non-simplification
    return symbols <= independent and e.is_polynomial(*symbols) and sp.expand(e) != 0
