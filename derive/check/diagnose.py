"""Diagnosing a claim that does not hold: which typical mistake of the catalogue, which rounding or factor, explains it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from itertools import product
from typing import Any, Callable

import sympy as sp
from sympy import Expr

from derive.check.claims import SampleSum
from derive.check.evaluator import MP, Undefined, close, fraction, places_phrase, rounded_text, show_number, to_mpf
from derive.check.mistakes import Candidate, Model, factor_parts
from derive.check.quantities import UNWRITTEN, Point, Quantity, all_close, lacks_sample_sum, values_at
from derive.model.registry import ACTIVATIONS
from derive.numeric.rounding import fixed, number, round_decimals

# -- diagnosing ----------------------------------------------------------------------------------

def with_letter(reason: str, loss: str) -> str:
    """Name the loss with the student's letter (dL/dw5 when they wrote L)."""
    return reason if loss == "E" else reason.replace("dE/d", f"d{loss}/d")


@dataclass(frozen=True)
class WrongNumber:
    """A claimed number that does not hold, as the diagnosis weighs it."""

    n: int                    # the sample whose value it claims (0 for a batch value)
    claimed: Any              # its 40-digit value
    true: Any                 # the true value
    tol: Any                  # how close a mistake's value must come to the claim to explain it
    shown: str                # the number as the student wrote it
    full: str                 # the true value with more decimals


def number_diagnosis(m: Model, q: Quantity, n: int, claimed, true, decimals, tol, shown: str, full: str
                     ) -> tuple[str, str]:
    """The most likely mistake behind a wrong number: rounding, a typical wrong chain, a mislabel, a factor.

    ``shown`` is the claimed number as the student wrote it, ``full`` the true value with more decimals.
    """
    wrong = WrongNumber(n, claimed, true, tol, shown, full)
    # written trailing zeros (0.55000) are digits the student claims: a typical mistake that gives the number to
    # every written digit explains it better than rounding to fewer places (one zero, 0.30, is a fixed place)
    mistake = _candidate_diagnosis(m, q, wrong) if _padded(shown) else None
    if mistake and mistake[0] != "mislabel":
        return mistake
    rounding = _rounding_diagnosis(m, q, wrong, decimals) if decimals is not None else None
    if rounding:
        return rounding
    mistake = mistake or _candidate_diagnosis(m, q, wrong)
    if mistake:
        return mistake
    factor = _factor_match(m, q, claimed, true, tol)
    if factor:
        return factor
    return "unknown", (f"{shown} matches none of the usual mistakes (it is off by {show_number(claimed - true, 3)}); "
                       f"work through the chain with --explain")


def _padded(shown: str) -> bool:
    """Whether a written number ends in two zeros or more after its decimal point (0.55000, 0.100)."""
    mantissa = shown.strip().lower().split("e")[0]
    return "." in mantissa and mantissa.endswith("00")


def _rounding_diagnosis(m: Model, q: Quantity, w: WrongNumber, decimals: int) -> tuple[str, str] | None:
    """Too few digits to tell, rounded intermediates, the true value cut off, or rounded to fewer decimals."""
    cut = rounded_text(w.true, decimals, truncate=True) == rounded_text(w.claimed, decimals) and decimals > 0
    if w.tol > abs(w.claimed) / 20 and not cut:
        return "imprecise", (f"{w.shown} has too few significant digits to tell what went wrong; "
                             f"give more decimals or use --explain")
    hand = _hand_rounding(m, q, w.n, w.claimed, w.tol, w.shown)
    if hand:
        also = " (or the true value cut off instead of rounded)" if cut else ""
        return "rounded_intermediates", hand + also
    one = None if cut else _one_rounded(m, q, w)
    if one:
        return "rounded_intermediate", one
    if cut:
        return "rounding", (f"{w.shown} is the true value {w.full} cut off after {places_phrase(decimals)}; "
                            f"rounded it is {rounded_text(w.true, decimals)}")
    fewer = _fewer_decimals(w, decimals)
    if fewer is not None:
        return "rounding", (f"{w.shown} is the value rounded to {places_phrase(fewer)}, but writing {w.shown} claims "
                            f"{places_phrase(decimals)}, and to {places_phrase(decimals)} it is "
                            f"{rounded_text(w.true, decimals)}")
    return None


def _fewer_decimals(w: WrongNumber, decimals: int) -> int | None:
    """The most decimals, fewer than the claim's, to which the true value rounds to the claimed number."""
    for fewer in range(decimals - 1, -1, -1):
        if Decimal(rounded_text(w.true, fewer)) == Decimal(rounded_text(w.claimed, decimals)):
            return fewer
    return None


def _candidate_diagnosis(m: Model, q: Quantity, w: WrongNumber) -> tuple[str, str] | None:
    """The first typical mistake whose value at the spec's numbers is the claim; else the quantities it is."""
    point = m.spec_point
    matches = []
    for i, c in enumerate(_number_candidates(m, q)):
        found = m.values_of((*q.about, q.sample, "number", i), c.expr, [point], [w.n])
        if found is None:
            continue
        v = MP.re(found[0])
        if abs(v - w.claimed) <= w.tol < abs(v - w.true):
            if c.key != "mislabel":
                return c.key, c.reason
            matches.append(m.show(c.expr))
    if matches:
        others = f" (and of {', '.join(matches[1:])})" if len(matches) > 1 else ""
        return "mislabel", f"{w.shown} is the value of {matches[0]}{others}, not of {q.label}"
    return None


def _number_candidates(m: Model, q: Quantity) -> list[Candidate]:
    """Structural mistakes first, then other quantities (mislabels) last."""
    cands = m.candidates(q, m.summed(q))
    return [c for c in cands if c.key not in ("mislabel",)] + [c for c in cands if c.key == "mislabel"] + \
        _same_number_other_samples(m, q)


def _same_number_other_samples(m: Model, q: Quantity) -> list[Candidate]:
    if q.sample is None or m.N == 1 or q.kind not in ("forward", "adjoint", "after"):
        return []
    return [Candidate("wrong_sample", f"that is {q.label.split('[')[0]} of sample {k + 1}, not of sample {q.sample + 1}",
                      m.indexed(q.symbol, k + 1, UNWRITTEN))
            for k in range(m.N) if k != q.sample]


def _hand_rounding(m: Model, q: Quantity, n: int, claimed, tol, shown: str) -> str | None:
    """A hand computation that rounds every intermediate value: does it give the claimed number?"""
    for mode, digits in [("decimals", k) for k in range(1, 7)] + [("significant", k) for k in range(2, 6)]:
        point = m.rounded_point(mode, digits)
        try:
            v = MP.re(m.at(q.symbol, point, n))
        except Undefined:
            continue
        if abs(v - claimed) <= tol:
            how = places_phrase(digits) if mode == "decimals" else f"{digits} significant digits"
            return (f"{shown} is what you get when the intermediate values are rounded to {how} "
                    f"before they are used again")
    return None


def _one_rounded(m: Model, q: Quantity, w: WrongNumber) -> str | None:
    """One intermediate value of the formula rounded before it was used (o1 = 0.75 for 0.7514): which, and to
    how many decimals. Others exact; once per sample's values (a batch's sum is left to the carried rounding)."""
    if m.summed(q) or q.kind not in ("gradient", "adjoint", "forward", "update", "local"):
        return None
    formula = m.truth(q)
    sample = m.spec_point.samples[w.n]
    for s in sorted(formula.free_symbols & set(sample) & set(m.forward), key=str):
        exact = fraction(sample[s])
        for places in range(1, 5):
            written = round_decimals(exact, places)
            point = replace(m.spec_point, samples=[{**env, s: to_mpf(written)} if k == w.n else env
                                                   for k, env in enumerate(m.spec_point.samples)])
            try:
                v = MP.re(m.at(formula, point, w.n))
            except Undefined:
                continue
            if abs(v - w.claimed) <= w.tol and Fraction(written.p, written.q) != exact:
                return (f"{w.shown} follows from {m.plain[s]} rounded to {places_phrase(places)} "
                        f"({fixed(exact, places)}) before it was used, where {m.plain[s]} = {show_number(exact, 10)}")
    return None


def expression_diagnosis(m: Model, q: Quantity, expr: Expr, contexts, claim, truth) -> tuple[str, str]:
    points = m.points
    for key, reason, repaired in _repairs(expr, lambda e: m._paren(m.show(e))):
        if all_close(values_at(m, repaired, points, contexts), truth):
            return key, reason
    if claim is None:
        return "undefined", "the expression is undefined for some values of its symbols (a division by zero or log 0)"
    loose = m.summed(q) and lacks_sample_sum(m, expr)
    if loose:
        part = m.per_sample_truth(q) if q.kind != "update" else None
        if part is not None and all_close(claim, m.values_of((*q.about, "part"), part, points, contexts)):
            return "missing_sum", (f"that is one sample's part; {q.label} sums it over the {m.N} samples: "
                                   f"sum({m.correct_text(q)[4:-1] if m.correct_text(q).startswith('sum(') else m.correct_text(q)})")
    summed = m.summed(q) and not loose
    for i, c in enumerate(m.candidates(q, summed)):
        if all_close(claim, m.values_of((*q.about, summed, i), c.expr, points, contexts)):
            extra = f", and the sum over the {m.N} samples is missing" if loose else ""
            return c.key, c.reason + extra
    factor = _written_n(m, q, expr, claim, truth) or _written_rate(m, q, expr, claim) or _ratio(m, q, claim, truth)
    if factor:
        return factor
    here = values_at(m, expr, [m.spec_point], [q.sample or 0] if not (q.per_sample or loose) else list(range(m.N)))
    there = values_at(m, q.symbol, [m.spec_point], [q.sample or 0] if not (q.per_sample or loose) else list(range(m.N)))
    if all_close(here, there):
        return "not_general", ("it gives the right value for this spec's numbers but not for other values of its "
                               "symbols, so it is not the general formula")
    return "unknown", "it is not equal to the true expression and matches none of the usual mistakes"


def generality_note(m: Model, q: Quantity, expr: Expr, contexts) -> str | None:
    """A claim that holds only because of this spec's N (e.g. 2/N = 1 with two samples)."""
    # dE/dh1[1] is dE/dh1 of sample 1: an indexed name carries the 1/N of the name it indexes
    used = {m.index_of.get(s, (s, None))[0] for s in expr.free_symbols}
    if q.kind not in ("gradient", "adjoint", "loss", "update") or m.N == 1 or used & m.scaled:
        return None
    rule = m.loss_rule
    other = m.N + 1
    ratio = rule.scale(other, m.J) / rule.scale(m.N, m.J)
    if ratio == 1:
        return None
    points = m.points[:2]
    changed = []
    for p in points:
        batch = dict(p.batch)
        batch[m.n_symbol] = MP.mpf(other)
        changed.append(Point(batch, p.samples))
    try:
        claim = [m.at(expr, p, n) for p in changed for n in contexts]
    except Undefined:
        return None
    if q.kind == "update":
        truth = [p.batch[q.target] - p.batch[m.eta] * to_mpf(ratio) * (p.batch[q.target] - m.at(q.symbol, p, n)) /
                 p.batch[m.eta] for p in points for n in contexts]
    else:
        truth = [to_mpf(ratio) * m.at(q.symbol, p, n) for p in points for n in contexts]
    if all_close(claim, truth):
        return None
    general = m.correct_text(q, general=True) or f"({m.N}/N)*{m._paren(m.correct_text(q))}"
    formula = f"; in general {q.label} = {general}" if q.kind != "update" else ""
    return f"this holds for this spec's N = {m.N} samples only, because the loss's 1/N changes with N{formula}"


def _repairs(expr: Expr, show: Callable[[Expr], str]) -> list[tuple[str, str, Expr]]:
    """Known wrong formulas written inside a claim (a registry entry's ``repair``), each with the claim as it
    should have been; the first one found."""
    found: list[tuple[str, str]] = []
    repairs = [entry.repair for entry in ACTIVATIONS.values() if entry.repair is not None]

    def fix(e: Expr) -> Expr:
        if not e.args:
            return e
        e = e.func(*(fix(a) for a in e.args)) if not isinstance(e, SampleSum) else SampleSum(fix(e.args[0]))
        for repair in repairs:
            repaired = repair(e, show)
            if repaired is not None:
                found.append(repaired[:2])
                return repaired[2]
        return e

    repaired = fix(expr)
    return [(key, reason, repaired) for key, reason in found[:1]]


# constant factors --------------------------------------------------------------------------------


def _factor_explanations(m: Model, q: Quantity) -> list[tuple[Fraction, str]]:
    """Every factor c (sign, 2, N, J and their products) the claim may be off by, best explanation first."""
    if q.kind not in ("gradient", "adjoint", "loss", "update") and not is_loss(m, q):
        options: list[tuple[Fraction, int, list[str]]] = [(Fraction(1), 0, [])]
    else:
        parts = factor_parts(m)
        options = [(Fraction(1), 0, [])]
        for size in (1, 2):
            for combo in product(parts, repeat=size):
                if size == 2 and combo[0].reason >= combo[1].reason:
                    continue
                c = Fraction(1)
                for part in combo:
                    c *= part.c
                options.append((c, sum(part.cost for part in combo), [part.reason for part in combo]))
    out: dict[Fraction, tuple[int, str]] = {}
    for sign in (1, -1):
        for c, cost, reasons in options:
            if c == 1 and sign == 1:
                continue
            words = (["the sign is flipped" + _sign_hint(m, q)] if sign < 0 else []) + reasons
            total = cost + (0 if sign > 0 else 1)
            key = c * sign
            text = loss_factor_text(m, key) if is_loss(m, q) else " and ".join(words)
            if key not in out or out[key][0] > total:
                out[key] = (total, text)
    return [(c, text) for c, (cost, text) in sorted(out.items(), key=lambda kv: (kv[1][0], kv[0]))]


def is_loss(m: Model, q: Quantity) -> bool:
    """Is q the loss itself (E, E', or one sample's e)? Nothing is differentiated in a claim about it."""
    return q.kind in ("loss", "loss_after") or (q.kind in ("forward", "after") and q.target == m.net.loss)


def loss_factor_text(m: Model, c: Fraction) -> str:
    """A loss off by the constant factor c: the constant in front of its sum, and what it should be."""
    rule = m.spec.loss
    formula = m.loss_rule.plain_formula
    where = ""
    if "N" in formula or "J" in formula:
        where = (f" with N = {m.N} sample{'s' if m.N != 1 else ''} and J = {m.J} output{'s' if m.J != 1 else ''}")
    scale = m.loss_rule.scale(m.N, m.J)
    front = Fraction(int(scale.p), int(scale.q))
    over = " and ".join(word for word, count in (("samples", m.N), ("outputs", m.J)) if count > 1)
    over = f", the sum over the {over}" if over else ""
    return f"the loss ({rule}) is {formula}{where}{over}: the constant factor in front is {front}, not {front * c}"


def _sign_hint(m: Model, q: Quantity) -> str:
    if q.kind == "update":
        return ""
    if m.loss_rule.square:
        return " (the derivative of (y - o)^2 with respect to o is -2*(y - o) = 2*(o - y))"
    return ""


def _ratio(m: Model, q: Quantity, claim, truth) -> tuple[str, str] | None:
    """When claim / truth is the same constant everywhere: which factor, and why."""
    if q.kind == "update":
        p = q.target
        ps = [pt for pt in m.points for _ in range(len(claim) // len(m.points))]
        implied = [m.implied_gradient(pt.batch, p, c) for pt, c in zip(ps, claim)]
        grad = [pt.batch[m.grad[p]] for pt in ps]
        found = _ratio(m, Quantity("gradient", f"dE/d{m.plain[p]}", m.grad[p], p, False, None), implied, grad)
        return (found[0], "in the gradient, " + found[1]) if found else None
    ratios = [c / t for c, t in zip(claim, truth) if abs(t) > MP.mpf("1e-30")]
    if not ratios or not all(close(r, ratios[0]) for r in ratios):
        return None
    r0 = MP.re(ratios[0])
    c = Fraction(MP.nstr(r0, 30, min_fixed=-40, max_fixed=40)).limit_denominator(10_000)
    if abs(MP.mpf(c.numerator) / c.denominator - r0) > MP.mpf("1e-20") * max(1, abs(r0)):
        return None
    for factor, text in _factor_explanations(m, q):
        if factor == c:
            return ("sign" if c == -1 else "factor"), text
    if is_loss(m, q):
        return ("sign" if c == -1 else "factor"), loss_factor_text(m, c)
    return "factor", f"it is off by a constant factor {c}"


def _written_rate(m: Model, q: Quantity, expr: Expr, claim) -> tuple[str, str] | None:
    """An update that steps by a number of its own instead of the learning rate (w - 0.05*dE/dw for η = 0.5)."""
    if q.kind != "update" or claim is None:
        return None
    p, rate = q.target, m.rates[q.target]
    ps = [pt for pt in m.points for _ in range(len(claim) // len(m.points))]
    ratios = [m.implied_gradient(pt.batch, p, c) / pt.batch[m.grad[p]] for pt, c in zip(ps, claim)
              if abs(pt.batch[m.grad[p]]) > MP.mpf("1e-30")]
    for written in sorted({abs(a) for a in expr.atoms(sp.Rational)} - {0, 1}):
        if written != rate and ratios and all(close(r, to_mpf(written / rate)) for r in ratios):
            return "wrong_rate", (f"the step uses {number(written).plain} where the learning rate is "
                                  f"{number(rate).plain}: {m.plain[p]}' = {m.plain[p]} - {m.rate_text(p)}*dE/d{m.plain[p]}")
    return None


def _written_n(m: Model, q: Quantity, expr: Expr, claim, truth) -> tuple[str, str] | None:
    """A claim that divides by N itself and is 1/N times the truth: the extra 1/N it wrote, whatever else the
    number N could stand for (with N = 2, the factor 2 of a square)."""
    if m.n_symbol not in expr.free_symbols or claim is None or q.kind not in ("gradient", "adjoint", "update"):
        return None
    ratios = [c / t for c, t in zip(claim, truth) if abs(t) > MP.mpf("1e-30")]
    if ratios and all(close(r, MP.mpf(1) / m.N) for r in ratios):
        return "factor", (f"there is an extra 1/N: the gradient of the batch's loss already carries the loss's own "
                          f"1/N (or sums over the samples); dividing by N = {m.N} again makes it {m.N} times too small")
    return None


def _factor_match(m: Model, q: Quantity, claimed, true, tol) -> tuple[str, str] | None:
    """A number that is the true value times a typical factor (sign, 2, N, …), to its precision."""
    if q.kind == "update":
        p = q.target
        point = m.spec_point
        g = point.batch[m.grad[p]]
        gq = Quantity("gradient", f"dE/d{m.plain[p]}", m.grad[p], p, False, None)
        for c, text in _factor_explanations(m, gq):
            v = point.batch[p] - m.numeric_step(point.batch, p, to_mpf(sp.Rational(c.numerator, c.denominator)) * g)
            if abs(v - claimed) <= tol and abs(v - true) > tol:
                return ("sign" if c == -1 else "factor"), "in the gradient, " + text
        return None
    for c, text in _factor_explanations(m, q):
        v = true * c.numerator / c.denominator
        if abs(v - claimed) <= tol and abs(v - true) > tol:
            return ("sign" if c == -1 else "factor"), text
    return None


_ENGLISH = {"the", "there", "that", "you", "it", "in", "only", "gradient", "a", "this"}


def sentence(reason: str, correct: str) -> str:
    """One sentence: the mistake, then the correct expression or value."""
    first = reason.split(" ", 1)[0]
    if first in _ENGLISH:
        reason = reason[:1].upper() + reason[1:]
    return f"{reason}; {correct}."
