"""`derive check`: decide whether a student's claims hold and diagnose a wrong one like a tutor.

A claim is ``LHS = RHS`` (see derive/claims.py for the syntax). The left side names a quantity of
the derivation; the right side is a number or an expression.

- A number holds when it equals the true value for the spec's data and initial parameters to
  the precision it is written with: 0.17 claims two decimals, so |true − 0.17| ≤ 0.005, decided
  in exact arithmetic against the engine's exact (or 60-digit) value; an integer or a fraction
  claims the exact value.
- An expression holds when it equals the true quantity for *all* values of its symbols, not
  just the spec's numbers. Parameters, inputs and targets are the independent symbols; every
  other name (z, h, o, δ, E, w5', …) stands for its definition in the network. The check draws
  several random points (parameters, inputs and targets; targets summing to 1 when the spec's
  do, as cross-entropy with softmax assumes), computes every named quantity at each point by
  the derivation's own formulas at 40 digits, and compares the claim with the truth there.
  Distinct analytic expressions agree at a random point with probability zero; piecewise
  activations (ReLU) get more points so that every unit is seen on both sides of 0.
- When a claim fails, the diagnosis compares it with the typical wrong answers generated from
  the true chain of local derivatives (drop a factor, swap σ' for tanh', use x for h, drop a
  path, transpose a weight index, a constant factor such as 2 or 1/N, …), with the other
  quantities of the network (a mislabelled answer), and for numbers with hand computations that
  round their intermediate values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Iterable, Mapping

from sympy import Expr, Symbol

from derive.check.arithmetic import propagated, strays
from derive.check.claims import Lhs, Rhs, Token, chained, parse_lhs, parse_rhs, split_claim, tokenize
from derive.check.diagnose import expression_diagnosis, generality_note, number_diagnosis, sentence, with_letter
from derive.check.evaluator import (
    MP,
    Undefined,
    finite,
    fraction,
    places_phrase,
    rounded_text,
    show_number,
    to_mpf,
    value_text,
)
from derive.check.matrices import (
    MatrixQuantity,
    MatrixReading,
    MValue,
    correct_formula,
    ShapeMismatch,
    parse_matrix_rhs,
    read_matrix,
    scalar_of_matrices,
    written_side,
    shape_text,
    variants,
)
from derive.check.mistakes import Model, model
from derive.check.proof import Decided, decide
from derive.check.quantities import MAX_PATHS, Quantity, Words, all_close, contexts_of, values_at
from derive.errors import ClaimError
from derive.model.convention import Convention
from derive.model.plain import PlainPrinter
from derive.text.document import chain_equation
from derive.text.render import environment

DIAGNOSED_ENTRIES = 3        # wrong entries of a matrix claim diagnosed one by one (the rest only counted)


@dataclass(frozen=True)
class Verdict:
    """The checker's answer for one claim.

    ``expected`` is the true number (with the claim's rounding) or the correct expression;
    ``diagnosis`` one sentence naming the most likely mistake (None when the claim holds).
    """

    claim: str
    holds: bool
    expected: str
    diagnosis: str | None
    quantity: str = ""              # the left-hand side as understood, e.g. dE/dw5, o[2], w5'
    kind: str = ""                  # "number" or "expression"
    value: float | None = None      # the true value for the spec's numbers (None: one per sample)
    claimed: float | None = None    # the claimed number
    precision: str = ""             # "2 decimals", "exact", "all values of its symbols"
    mistake: str | None = None      # short key of the diagnosed mistake, e.g. missing_activation_derivative
    correct: str = ""               # the correct expression, in the claim syntax
    note: str | None = None         # a remark on a claim that holds (e.g. only because N = 2)


# -- reading a claim ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Reading:
    quantity: Quantity
    rhs: Rhs
    loss: str
    written: str            # the right-hand side exactly as typed
    of_matrices: bool = False   # an entry of a matrix claim: its names for every sample are its notation, not this batch


def read(solution, text: str) -> _Reading:
    """Parse one claim against a solution's names; ClaimError (one line) when it cannot be read."""
    m = model(solution)
    if not isinstance(text, str):
        raise ClaimError(f"a claim must be text; got {type(text).__name__}")
    tokens = tokenize(text)
    left, right = split_claim(tokens)
    lhs = parse_lhs(left)
    q = m.quantity(lhs)
    rhs = parse_rhs(right, Words(m, lhs.loss or "E"))
    if lhs.kind == "derivative" and lhs.loss != "E":
        q = Quantity(q.kind, q.label.replace("dE/", f"d{lhs.loss}/", 1), q.symbol, q.target, q.per_sample, q.sample)
    written = text[right[0].column - 1:right[-2].end - 1] if len(right) > 1 else ""
    return _Reading(q, rhs, lhs.loss or "E", written)


def _echo(text: str, limit: int = 60) -> str:
    """A claim quoted in a one-line message: whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    flat = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in flat)
    return repr(flat if len(flat) <= limit else flat[:limit - 1] + "…")


# -- deciding and diagnosing -------------------------------------------------------------------

def check_claim(solution, text: str) -> Verdict:
    """Whether ``text`` ("LHS = RHS") holds for ``solution``, and if not, the most likely mistake.

    >>> from derive import solve
    >>> check_claim(solve("linear-221"), "dE/dw5 = (o - y)*h1").holds
    True

    Raises ClaimError (one line: where and why) when the claim cannot be read.
    """
    try:
        parts = chained(text) if isinstance(text, str) else None
        if parts:
            return _chain_verdict(solution, text, parts)
        m = model(solution)
        matrix = read_matrix(m, text) if isinstance(text, str) else None
        if matrix is not None:
            return _check_matrix(m, text, matrix)
        of_matrices = scalar_of_matrices(m, text) if isinstance(text, str) else None
        if of_matrices is not None:
            return _check_of_matrices(m, text, *of_matrices)
        return _judged(m, text, read(solution, text))
    except ClaimError as exc:
        raise ClaimError(f"claim {_echo(text)}: {exc}") from None


def _check_matrix(m: Model, text: str, r: MatrixReading) -> Verdict:
    """A matrix claim holds when every entry does; a wrong one is diagnosed as a matrix first (shapes, the
    transpose), then by its wrong entries, each judged as the scalar claim it stands for. Once per text."""
    key = ("matrix verdict", text)
    if key not in m._memo:
        m._memo[key] = _matrix_claim_verdict(m, text, r)
    return m._memo[key]


def _matrix_claim_verdict(m: Model, text: str, r: MatrixReading) -> Verdict:
    q, value = r.quantity, r.value
    if value is None:
        repaired = _repaired(m, r)          # the message already says which transpose would multiply
        return _matrix_verdict(m, text, q, False, f"{r.mismatch}", "shapes" if repaired is None else repaired[1])
    numbers = value.literals is not None
    if value.scalar and q.shape != (1, 1):
        return _matrix_verdict(m, text, q, False, f"The right side is one number, but {q.label} is a "
                                                 f"{shape_text(q.shape)} matrix", "shapes")
    if value.shape != q.shape or (q.shape[0] == q.shape[1] > 1 and not _holds_everywhere(m, r, value)
                                  and _holds_everywhere(m, r, _transpose(value))):
        return _wrong_shape(m, text, r, value)
    places = [(i, j) for i in range(q.shape[0]) for j in range(q.shape[1])]
    # an expression's entries are first only evaluated: the full verdict (proof, diagnosis) where it is needed
    wrong = [(i, j) for i, j in places if not _entry_holds(m, _entry_reading(m, r, value, i, j))]
    if not wrong:
        return _matrix_claim_verdict_in_full(m, text, r, value, places, numbers)
    verdicts = [(i, j, _entry_verdict(m, text, r, value, i, j)) for i, j in wrong[:DIAGNOSED_ENTRIES]]
    diagnosed = [(i, j, v) for i, j, v in verdicts if not v.holds]
    if not diagnosed:           # the glance was stricter than the verdict (a hand calculation's rounding)
        return _matrix_claim_verdict_in_full(m, text, r, value, places, numbers)
    reason, mistake = _entries_reason(len(places), len(wrong), diagnosed)
    if mistake in (None, "unknown"):
        repaired = _repaired(m, r)
        if repaired is not None:
            return _matrix_verdict(m, text, q, False, *repaired, numbers=numbers)
    return _matrix_verdict(m, text, q, False, reason, mistake, numbers=numbers)


def _repaired(m: Model, r: MatrixReading) -> tuple[str, str] | None:
    """A claim that would hold with one matrix transposed, one product taken entrywise, one matrix of another
    layer or one summed over the samples: that change in words, and the mistake's key."""
    for value, change, key in variants(m, r):
        if _holds_everywhere(m, r, value):
            return change, key
    return None


def _check_of_matrices(m: Model, text: str, lhs: Lhs, right: list[Token]) -> Verdict:
    """One number written with matrices (E = 1/2 * sum((A2 - Y) .* (A2 - Y))): the 1×1 result is the claim."""
    q, loss = m.quantity(lhs), lhs.loss or "E"
    written = written_side(text, right)
    try:
        value = parse_matrix_rhs(m, right, loss, sum_all=True)[0]
        problem = None if value.shape == (1, 1) else f"{value.shown} is {shape_text(value.shape)}, but {q.label} is one number"
    except ShapeMismatch as exc:
        problem = str(exc)
    if problem is not None:
        correct = m.correct_text(q)
        return Verdict(text, False, correct, sentence(problem, f"{q.label} = {correct}"), q.label, "expression",
                       mistake="shapes", correct=correct)
    return _judged(m, text, _Reading(q, Rhs(value.expr, "expression", None), loss, written, True))


def _matrix_claim_verdict_in_full(m: Model, text: str, r: MatrixReading, value: MValue, places, numbers: bool
                                  ) -> Verdict:
    """Every entry's full verdict: where the quick look and the verdicts disagree on which entries are wrong."""
    cells = [(i, j, _entry_verdict(m, text, r, value, i, j)) for i, j in places]
    wrong = [(i, j, v) for i, j, v in cells if not v.holds]
    if not wrong:
        precisions = {v.precision for _, _, v in cells}
        precision = precisions.pop() if len(precisions) == 1 else "each entry to the precision it is written with"
        return _matrix_verdict(m, text, r.quantity, True, None, None, precision, numbers)
    reason, mistake = _entries_reason(len(places), len(wrong), wrong[:DIAGNOSED_ENTRIES])
    return _matrix_verdict(m, text, r.quantity, False, reason, mistake, numbers=numbers)


def _wrong_shape(m: Model, text: str, r: MatrixReading, value: MValue) -> Verdict:
    """The right side has the transpose's shape (or is the transpose of a square matrix), or another shape."""
    q, numbers = r.quantity, value.literals is not None
    if value.shape == q.shape[::-1] and _holds_everywhere(m, r, _transpose(value)):
        return _matrix_verdict(m, text, q, False, _transposed_reason(m, q, value), "transposed", numbers=numbers)
    repaired = _repaired(m, r)
    if repaired is not None:
        return _matrix_verdict(m, text, q, False, *repaired, numbers=numbers)
    return _matrix_verdict(m, text, q, False, f"{value.shown} is {shape_text(value.shape)}, but {q.label} is "
                                             f"{shape_text(q.shape)}", "shapes", numbers=numbers)


def _transposed_reason(m: Model, q: MatrixQuantity, value: MValue) -> str:
    if value.literals is not None:
        return f"Rows and columns are swapped: this is the transpose of {q.label}"
    layout = _LAYOUTS[m.spec.convention]
    return f"This is the transpose of {q.label}: the other layout's product (this spec has {layout})"


_LAYOUTS = {Convention.COLUMN: "one column per sample, W(l) is n(l)×n(l-1)",
            Convention.ROW: "one row per sample, W(l) is n(l-1)×n(l)",
            Convention.TRANSPOSED: "one column per sample, W(l) is n(l-1)×n(l) and used as W(l)^T"}


def _transpose(value: MValue) -> MValue:
    literals = None if value.literals is None else tuple(zip(*value.literals))
    return MValue(value.cells.T, value.scalar, f"{value.shown}^T", literals)


def _entry_reading(m: Model, r: MatrixReading, value: MValue, i: int, j: int) -> _Reading:
    """Entry (i, j) of a matrix claim as the scalar claim it stands for: a number as written, a hand
    calculation with its rounded numbers, or an expression."""
    q = r.quantity.cells[i][j]
    if value.scalar and r.number is not None and value is r.value:
        return _Reading(q, r.number, r.loss, r.written, True)
    if value.literals is not None:
        entry = value.literals[i][j]
        return _Reading(q, entry.rhs, r.loss, entry.text, True)
    if r.hand is not None and value is r.value:
        rhs, written = r.hand.entry(value.cells[i, j], i, j)
        return _Reading(q, rhs, r.loss, written, True)
    return _Reading(q, Rhs(value.cells[i, j], "expression", None), r.loss, m.show(value.cells[i, j]), True)



def _entry_verdict(m: Model, text: str, r: MatrixReading, value: MValue, i: int, j: int) -> Verdict:
    return _judged(m, text, _entry_reading(m, r, value, i, j))


def _judged(m: Model, text: str, r: _Reading) -> Verdict:
    """A read claim judged as a number (its right side has no symbol but the constants) or as an expression."""
    if r.rhs.expr.free_symbols <= set(m.constants):
        return _check_number(m, text, r)
    return _check_expression(m, text, r)


def _holds_everywhere(m: Model, r: MatrixReading, value: MValue) -> bool:
    """Whether every entry holds (numbers to their decimals, expressions at the random points): no diagnosis."""
    if value.shape != r.quantity.shape:
        return False
    return all(_entry_holds(m, _entry_reading(m, r, value, i, j), hand=False)
               for i in range(value.shape[0]) for j in range(value.shape[1]))


def _entry_holds(m: Model, reading: _Reading, hand: bool = True) -> bool:
    """One entry at a glance: an expression at the random points, a number to its decimals (a hand calculation,
    when ``hand``, by its full verdict, which allows for its factors' rounding)."""
    q, expr = reading.quantity, reading.rhs.expr
    if not expr.free_symbols <= set(m.constants):
        contexts = contexts_of(m, q, expr)
        truth = m.values_of((*q.about, q.sample, "truth"), q.symbol, m.points, contexts)
        return all_close(values_at(m, expr, m.points, contexts), truth)
    if hand and _worked_by_hand(reading.rhs):
        return _check_number(m, "", reading).holds
    exact = m.exact_value(q, q.sample or 0)
    return _within(_claimed_exactly(m, expr, claimed_number(m, reading)), fraction(exact), reading.rhs.decimals,
                   exact.is_Rational)


def _entries_reason(cells: int, wrong: int, diagnosed) -> tuple[str, str | None]:
    """The wrong entries: how many, and the first one's diagnosis as a scalar claim (a sentence of its own);
    ``diagnosed`` holds the first few wrong entries' verdicts."""
    i, j, first = diagnosed[0]
    where = f"entry ({i + 1}, {j + 1}), {first.quantity}"
    mistakes = {v.mistake for _, _, v in diagnosed}
    if cells == 1:
        return first.diagnosis or "", first.mistake      # a 1×1 matrix: its one entry's diagnosis is the matrix's
    if wrong == 1:
        head = f"One entry is wrong. In {where}"
    elif len(mistakes) == 1 and first.mistake not in (None, "unknown") and wrong == len(diagnosed):
        every = "every entry" if wrong == cells else f"{wrong} of its {cells} entries"
        head = f"The same mistake in {every}. In {where}"
    elif len(mistakes) == 1 and first.mistake not in (None, "unknown"):
        head = (f"{wrong} of its {cells} entries are wrong, and the first {len(diagnosed)} show the same mistake. "
                f"In {where}")
    else:
        head = f"{wrong} of its {cells} entries are wrong. In the first, {where}"
    detail = first.diagnosis or ""
    return f"{head}: {detail[:1].lower() + detail[1:] if not detail[:2].isupper() else detail}", first.mistake


def _matrix_verdict(m: Model, text: str, q: MatrixQuantity, holds: bool, reason: str | None, mistake: str | None,
                    precision: str = "", numbers: bool = False) -> Verdict:
    """The verdict on a whole matrix; ``reason`` is a sentence (or a clause, for a mistake of the matrix)."""
    correct = correct_formula(m, q)
    truth = _truth_matrix(m, q)
    shown = f"{q.label} = " + (f"{correct} = {truth}" if correct else truth)
    diagnosis = None
    if not holds and reason is not None:
        whole = reason.endswith(".")             # an entry's own diagnosis, already a sentence
        diagnosis = f"{reason} In matrix form, {shown}." if whole else sentence(reason, shown)
    return Verdict(text, holds, truth if numbers or not correct else correct, diagnosis, q.label, "matrix", None,
                   None, precision, mistake, correct, None)


def _truth_matrix(m: Model, q: MatrixQuantity) -> str:
    """The true matrix for the spec's numbers, entry by entry to 6 significant digits."""
    rows = (", ".join(show_number(to_mpf(m.exact_value(c, c.sample or 0))) for c in line) for line in q.cells)
    return "[" + ", ".join(f"[{row}]" for row in rows) + "]"


def _chain_verdict(solution, text: str, parts: list[str]) -> Verdict:
    """A chain A = B = C holds when every link does; its verdict is the first link that does not (else the last)."""
    verdicts = []
    for part in parts:
        try:
            verdicts.append(check_claim(solution, part))
        except ClaimError as exc:
            raise ClaimError(str(exc).removeprefix(f"claim {_echo(part)}: ")) from None
    chosen = next((v for v in verdicts if not v.holds), verdicts[-1])
    return replace(chosen, claim=text)


def check_claims(solution, texts: Iterable[str]) -> list[Verdict]:
    """check_claim for each text, in order; the first unreadable claim raises ClaimError."""
    return [check_claim(solution, t) for t in texts]


# numbers ---------------------------------------------------------------------------------------

def claimed_number(m: Model, r: _Reading) -> Any:
    """The number a claim's right side is, at the spec's values; ClaimError (no prefix) when it is none."""
    q = r.quantity
    if q.per_sample and q.sample is None:
        named = "its samples' numbers one by one" if r.of_matrices else f"{q.label}[1] … {q.label}[{m.N}]"
        raise ClaimError(f"{q.label} has one value per sample ({m.N} samples); write {named}")
    try:
        claimed = finite(m.at(r.rhs.expr, m.spec_point, q.sample or 0))
    except Undefined:
        raise ClaimError("the right-hand side is undefined") from None
    if isinstance(claimed, MP.mpc):
        raise ClaimError("the right-hand side is not a real number")
    return claimed


def _check_number(m: Model, text: str, r: _Reading) -> Verdict:
    q = r.quantity
    n = q.sample or 0
    claimed = claimed_number(m, r)
    decimals = r.rhs.decimals
    exact = m.exact_value(q, n)
    truth = fraction(exact)
    true = to_mpf(exact)
    full = value_text(truth, decimals)
    correct = m.correct_text(q)
    if _worked_by_hand(r.rhs):
        return _check_arithmetic(m, text, r, q, n, claimed, truth, exact, correct)
    holds = _within(_claimed_exactly(m, r.rhs.expr, claimed), truth, decimals, exact.is_Rational)
    expected = full + (f" ({rounded_text(truth, decimals)} to {places_phrase(decimals)})" if decimals is not None else "")
    precision = "exact" if decimals is None else places_phrase(decimals)
    mistake = diagnosis = None
    if not holds:
        written = " ".join(r.written.split())
        shown = written if len(written) <= 40 else value_text(claimed, decimals)
        tol = tolerance(decimals, true, claimed)
        mistake, reason = number_diagnosis(m, q, n, claimed, true, decimals, tol, shown, full)
        reason = with_letter(reason, r.loss)
        shown_true = rounded_text(truth, decimals) if decimals is not None else full
        diagnosis = sentence(reason, f"{q.label} = {shown_true}" + (f" ({full})" if decimals is not None else ""))
    return Verdict(text, holds, expected, diagnosis, q.label, "number", float(true), float(claimed), precision,
                   mistake, correct, None)


def _worked_by_hand(rhs: Rhs) -> bool:
    """An expression of numbers some of which are rounded: 0.74*0.19*0.59, 0.4 - 0.5*0.7*0.2*0.6."""
    return rhs.written == "expression" and rhs.tracked is not None and any(
        lit.decimals is not None for lit in rhs.literals)


def _check_arithmetic(m: Model, text: str, r: _Reading, q, n: int, claimed, truth: Fraction, exact: Expr,
                      correct: str) -> Verdict:
    """A hand calculation holds when its computed value lies within what its factors' rounding allows
    (error propagation, to first order) and each rounded factor is a value of the network."""
    value, rational = _claimed_exactly(m, r.rhs.expr, claimed)
    allowed = propagated(m, r.rhs)
    off = strays(m, q, n, r.rhs)
    holds = abs(value - truth) <= allowed + _slack(truth, exact.is_Rational, value, rational) and not off
    shown = value_text(value, None)
    expected = value_text(truth, None)
    precision = f"± {show_number(allowed, 2)}, what its factors' rounding allows"
    diagnosis = mistake = None
    if off:
        lit = off[0].literal
        places = places_phrase(lit.decimals or 0)
        mistake = "wrong_intermediate"
        diagnosis = (f"{float(lit.value):g} is no value of this network to {places}: it most likely stands for "
                     f"{off[0].nearest} = {value_text(off[0].value, None)}, which is "
                     f"{rounded_text(off[0].value, lit.decimals or 0)} to {places}; the rest follows from it.")
    elif not holds:
        mistake, diagnosis = _worked_mistake(m, r, q, n, value, exact, allowed)
        if mistake is None:
            mistake = "arithmetic"
            diagnosis = (f"{r.written.strip()} = {shown}, but {q.label} = {expected}: more than the "
                         f"± {show_number(allowed, 2)} that rounding its factors can explain.")
    return Verdict(text, holds, expected, diagnosis, q.label, "number", float(to_mpf(exact)), float(claimed),
                   precision, mistake, correct, None)


def _worked_mistake(m: Model, r: _Reading, q, n: int, value: Fraction, exact: Expr, allowed: Fraction
                    ) -> tuple[str | None, str | None]:
    """A hand calculation whose numbers are right but whose formula is a typical mistake (0.40 − 0.0822: the
    learning rate left out), diagnosed as the number it computes; (None, None) for none of them."""
    true, claimed = to_mpf(exact), MP.mpf(value.numerator) / value.denominator
    tol = MP.mpf(allowed.numerator) / allowed.denominator + tolerance(None, true, claimed)
    full = value_text(fraction(exact), None)
    mistake, reason = number_diagnosis(m, q, n, claimed, true, None, tol, r.written.strip(), full)
    if mistake in (None, "unknown"):
        return None, None
    return mistake, sentence(with_letter(reason, r.loss), f"{q.label} = {full}")


def _claimed_exactly(m: Model, expr: Expr, claimed) -> tuple[Fraction, bool]:
    """The claimed number exactly (True) where it is rational, else its 40-digit value (False)."""
    value = expr.xreplace(m.constants)
    if value.is_Rational:
        return fraction(value), True
    return fraction(claimed), False


def _within(claimed: tuple[Fraction, bool], truth: Fraction, decimals: int | None, exact: bool) -> bool:
    """|claimed − truth| ≤ half a unit of the claim's last decimal (0 for an exact claim).

    Exact arithmetic; the only slack is the error of a value that is not exact: the engine's
    60-digit truth (10⁻⁴⁰ of it is far more) and a claim such as exp(1)/10 evaluated at 40 digits.
    """
    value, rational = claimed
    half = Fraction(1, 2 * 10 ** decimals) if decimals is not None else Fraction(0)
    return abs(value - truth) <= half + _slack(truth, exact, value, rational)


def _slack(truth: Fraction, exact: bool, value: Fraction, rational: bool) -> Fraction:
    """The error of a value that is not exact: the engine's 60-digit truth, a claim evaluated at 40 digits."""
    return (Fraction(0) if exact else abs(truth) / 10 ** 40) + (Fraction(0) if rational else abs(value) / 10 ** 35)


def tolerance(decimals: int | None, true: Any, claimed: Any) -> Any:
    """How close a typical wrong answer's 40-digit value must come to the claim to explain it."""
    noise = MP.mpf("1e-30") * max(abs(true), abs(claimed))
    if decimals is None:
        return noise
    return MP.mpf(5) / MP.mpf(10) ** (decimals + 1) + noise


# expressions -----------------------------------------------------------------------------------

def _check_expression(m: Model, text: str, r: _Reading) -> Verdict:
    q, expr = r.quantity, r.rhs.expr
    contexts = contexts_of(m, q, expr)
    points = m.points
    truth = m.values_of((*q.about, q.sample, "truth"), q.symbol, points, contexts)
    claim = values_at(m, expr, points, contexts)
    holds = all_close(claim, truth)
    decided = decide(m, q, expr)
    correct = m.correct_text(q)
    value_here = None if (q.per_sample and q.sample is None) else float(MP.re(m.at(q.symbol, m.spec_point, q.sample or 0)))
    note = mistake = diagnosis = None
    if holds and decided is Decided.REFUTED:
        # a term below what 40-digit points resolve (+ 10^-30*x1): equal at the points, not as formulas
        holds, mistake = False, "not_identical"
        diagnosis = sentence("it agrees with the true expression at every point tried, but as formulas they differ "
                             "by a term too small to show there", f"{q.label} = {correct}")
    elif holds:
        only_here = generality_note(m, q, expr, contexts)
        if only_here is not None and not r.of_matrices and _enumerates_the_batch(m, expr):
            note = only_here            # ((o[1] - y[1])^2 + (o[2] - y[2])^2)/2 is about this batch by its very names
        elif only_here is not None:     # right for this spec's N only: not the general formula it claims to be
            holds, mistake = False, "this_n_only"
            diagnosis = f"Right here only: {only_here}."
    else:
        mistake, reason = expression_diagnosis(m, q, expr, contexts, claim, truth)
        reason = with_letter(reason, r.loss)
        diagnosis = sentence(reason, f"{q.label} = {correct}")
    shown = ("all values of its symbols" if decided is Decided.PROVED
             else f"the {len(points) * max(1, len(contexts))} random points tried (SymPy found no proof for all values)")
    return Verdict(text, holds, correct, diagnosis, q.label, "expression", value_here, None, shown, mistake, correct,
                   note)


def _enumerates_the_batch(m: Model, expr: Expr) -> bool:
    """Whether a claim names every sample of the batch one by one (o[1], …, o[N]): a formula of this batch."""
    named = {m.index_of[s][1] for s in expr.free_symbols if s in m.index_of}
    return m.N > 1 and named >= set(range(m.N))          # index_of holds 0-based samples


# -- explaining the true derivation ----------------------------------------------------------------

def explain(solution, text: str) -> str:
    """The correct derivation of the quantity a claim names, in plain text (chain, formula, numbers)."""
    r = read(solution, text)
    return explain_quantity(model(solution), r.quantity)


def _update_lines(m: Model, q: Quantity, b: Mapping[Symbol, Any]) -> list[str]:
    """p' = p − η ∂E/∂p (with weight decay η (∂E/∂p + λp)) with its numbers, then how ∂E/∂p comes about."""
    p, label = q.target, q.label
    if p in m.frozen:
        shown = f"0   ({m.plain[p]} is frozen)" if q.kind == "velocity" else \
            f"{m.plain[p]} = {show_number(b[p], 10)}   ({m.plain[p]} is frozen)"
        return [f"{label} = {shown}"]
    minus, minus_value = (f"{m.plain[p]} - ", f"{show_number(b[p], 10)} - ") if q.kind == "update" else ("-", "-")
    rate = show_number(b[m.eta] if m.one_rate else to_mpf(m.rates[p]), 6)
    g, w = _signed(b[m.grad[p]], 10), _signed(b[p], 10)
    if p in m.decay:
        rule = f"{label} = {minus}{m.rate_text(p)}*(dE/d{m.plain[p]} + lambda*{m.plain[p]})"
        step = f"({show_number(b[m.grad[p]], 10)} + {show_number(b[m.lam], 6)}*{w})"
    else:
        rule = f"{label} = {minus}{m.rate_text(p)}*dE/d{m.plain[p]}"
        step = g
    return [rule, f"{' ' * len(label)} = {minus_value}{rate}*{step} = {show_number(b[q.symbol], 10)}", "",
            explain_quantity(m, Quantity("gradient", f"dE/d{m.plain[p]}", m.grad[p], p, False, None))]


def _signed(value: Any, digits: int) -> str:
    """A number as a factor: in parentheses when negative, so that 0.1*(-2.5) reads as a product."""
    text = show_number(value, digits)
    return f"({text})" if text.startswith("-") else text


def explain_quantity(m: Model, q: Quantity) -> str:
    net, d = m.net, m.d
    n = q.sample or 0
    point = m.spec_point
    lines = []
    label = q.label

    def numbers(expr: Expr, k: int) -> str:
        get = m.getter(point, k)
        values = {}
        for s in expr.free_symbols:
            v = MP.re(get(s))
            values[s] = f"({show_number(v, 6)})" if v < 0 else show_number(v, 6)
        return PlainPrinter({**m.display, **values}).doprint(expr)

    if q.kind in ("gradient", "adjoint"):
        v = q.target
        chains = d.chains(v) if d.path_count(v) <= MAX_PATHS else None
        if chains is not None:
            letter = label[1] if label.startswith("d") else "E"
            symbolic = " + ".join(" * ".join(f"d{letter if e.child == net.loss else m.plain[e.child]}/"
                                             f"d{m.plain[e.parent]}" for e in chain) for chain in chains)
            lines.append(f"{label} = {symbolic}")
            lines.append(f"{' ' * len(label)} = {m.correct_text(q)}")
        else:
            lines.append(f"{label} = {m.show(d.gradient[v])}   (the δ recursion; {d.path_count(v)} paths)")
        samples = range(m.N) if m.summed(q) else [n]
        for k in samples:
            terms = (" + ".join(" * ".join(m._paren(numbers(e.local, k)) for e in chain if e.local != 1) or "1"
                                for chain in chains) if chains else numbers(d.gradient[v], k))
            prefix = f"sample {k + 1}: " if m.summed(q) else ""
            per = m.at(d.adjoint[v], point, k) if m.summed(q) else m.at(q.symbol, point, k)
            lines.append(f"{' ' * len(label)}   {prefix}{terms} = {show_number(per, 8)}")
        if m.summed(q):
            lines.append(f"{label} = sum over the {m.N} samples = {show_number(m.at(q.symbol, point, 0), 10)}")
        else:
            lines.append(f"{label} = {show_number(m.at(q.symbol, point, n), 10)}")
    elif q.kind in ("update", "velocity"):
        lines += _update_lines(m, q, point.batch)
    else:
        formula = m.per_sample_truth(q)
        samples = range(m.N) if m.summed(q) else [n]
        lines.append(f"{label} = {m.correct_text(q)}")
        for k in samples:
            prefix = f"sample {k + 1}: " if m.summed(q) else ""
            lines.append(f"{' ' * len(label)}   {prefix}{numbers(formula, k)} = {show_number(m.at(formula, point, k), 8)}")
        lines.append(f"{label} = {show_number(m.at(q.symbol, point, n), 10)}")
    return "\n".join(lines)


def latex_explanation(solution, q: Quantity, precision: int = 6) -> str | None:
    """The worked solution's own display of ∂E/∂v (chain, expressions, numbers) as Markdown math.

    Reuses the document builder and the ``equation`` macro of the Markdown templates, one
    equation per sample; None for quantities the worked solution shows differently.
    """
    if q.kind not in ("gradient", "adjoint"):
        return None
    solution = solution.first_update           # online and in mini-batches, what the claims are about
    samples = solution.training.first.samples
    chosen = range(len(samples)) if q.sample is None else [q.sample]
    template = environment("md").from_string('{% import "macros.md.j2" as m %}{{ m.equation(eq) }}')
    return "\n\n".join(template.render(eq=chain_equation(solution, q.target, n + 1, precision))
                        for n in chosen)


def matrix_explanation(m: Model, text: str) -> str:
    """A matrix's derivation: its matrix form and true matrix, then its first entry's chain as a scalar."""
    reading = read_matrix(m, text)
    assert reading is not None, text
    q = reading.quantity
    formula = correct_formula(m, q)
    first = q.cells[0][0]
    return "\n".join([f"{q.label} = " + (f"{formula} = " if formula else "") + _truth_matrix(m, q),
                      f"entry (1, 1) is {first.label}:", explain_quantity(m, first)])


def unreadable(text: str, error: ClaimError) -> Verdict:
    """The verdict on a claim that cannot be read (with --keep-going): it does not hold, and why."""
    reason = str(error).removeprefix(f"claim {_echo(text)}: ")
    return Verdict(text, False, "", f"This claim cannot be read: {reason}.", mistake="unreadable")
