"""A student's whole derivation checked line by line, each line also against the student's own earlier values."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Sequence

import sympy as sp
from sympy import Expr, Symbol

from derive.check.evaluator import MP, Undefined, rounded_text
from derive.check.matrices import WrittenEntry, read_matrix
from derive.check.mistakes import Model, model
from derive.check.quantities import Point, Quantity
from derive.check.grading import Grading, md_code, md_text, misconceptions, plain_text, read_answers, read_toml
from derive.check.verdict import Verdict, check_claim, read, tolerance, unreadable
from derive.derived.solution import solve
from derive.errors import ClaimError
from derive.text.escape import spreadsheet_cell

MAX_LINES = 2_000
# a line that is prose, a fence or a LaTeX environment's frame: not a claim
_FRAME = re.compile(r"^(#|```|\$\$$|\\begin\{|\\end\{|\\\[$|\\\]$)")
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+")


@dataclass(frozen=True)
class Line:
    """One claim of a derivation: where it stands in the file, and its text as a claim ("LHS = RHS")."""

    number: int               # the line of the file, from 1
    text: str


@dataclass(frozen=True)
class LineVerdict:
    """A line's verdict against the truth, and against the student's own earlier lines (error carried forward).

    ``consistent`` is True when the line's number follows from the student's earlier values (their own δ, say),
    ``uses`` the earlier lines whose values it takes; ``flag`` warns when it follows only from an implausible one.
    """

    line: Line
    verdict: Verdict
    consistent: bool
    uses: tuple[int, ...] = ()
    flag: str | None = None


@dataclass(frozen=True)
class Derivation:
    """One --derivation file: where it came from, whose it is, and its lines."""

    source: str
    student: str
    lines: tuple[Line, ...]


# -- reading a derivation ------------------------------------------------------------------------------

def load_derivation(path: str) -> Derivation:
    """A derivation in Markdown or plain lines, a LaTeX align block, or a TOML sheet with derivation = \"\"\"…\"\"\"."""
    text = read_answers(path)
    student = ""
    if path.endswith(".toml"):
        text, student = _from_toml(path, text)
    lines = claim_lines(text)
    if not lines:
        raise ClaimError(f"{path}: no line of the form 'LHS = RHS'; expected one claim per line, e.g. dE/dw5 = 0.0822")
    if len(lines) > MAX_LINES:
        raise ClaimError(f"{path}: too many lines ({len(lines)}; at most {MAX_LINES})")
    return Derivation(path, student, tuple(lines))


def _from_toml(path: str, text: str) -> tuple[str, str]:
    raw = read_toml(path, text)
    derivation, student = raw.get("derivation"), raw.get("student", "")
    if not isinstance(derivation, str):
        raise ClaimError(f"{path}: derivation: expected a string, e.g. derivation = \"\"\"dE/dw5 = 0.0822\"\"\"")
    if not isinstance(student, str):
        raise ClaimError(f"{path}: student: expected a string")
    return derivation, student


def claim_lines(text: str) -> list[Line]:
    """The claims of a derivation's text: one per line with an '=' (≈, \\approx and &= read as '='), Markdown
    bullets, $…$ and LaTeX's line ends stripped; a line that starts with '=' continues the one before it."""
    out: list[Line] = []
    lhs = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = _bare(raw)
        if not line or _FRAME.match(line) or "=" not in line:
            continue
        parts = [p.strip() for p in line.split("=")]
        if parts[0]:
            lhs = parts[0]
        if not lhs:
            continue                  # a continuation with nothing before it: not a claim
        out += [Line(number, f"{lhs} = {part}") for part in parts[1:] if part]
    return out


def _bare(raw: str) -> str:
    line = _BULLET.sub("", raw.strip())
    line = re.sub(r"&\s*=", "=", line.replace("\\approx", "=").replace("≈", "="))      # align's &= (a bmatrix keeps its &)
    line = re.sub(r"\\\\\s*$", "", line.strip()).strip().rstrip(".,;")     # LaTeX's line end, a sentence's stop
    return line.strip().strip("$").strip().rstrip(".,;").strip()


# -- grading it -------------------------------------------------------------------------------------

@dataclass
class _Given:
    """What the student has written so far: each quantity's claimed value, and the line that gave it."""

    batch: dict[Symbol, Any]
    samples: list[dict[Symbol, Any]]
    line_of: dict[tuple[Symbol, int | None], int]
    decimals: dict[tuple[Symbol, int | None], int | None] = field(default_factory=dict)   # as each was written

    def wrote(self, s: Symbol, samples: list[int]) -> bool:
        return s in self.batch or any(s in self.samples[n] for n in samples)


def grade_derivation(solution, derivation: Derivation) -> list[LineVerdict]:
    """Every line against the truth, and against the values of the student's own earlier lines."""
    m = model(solution)
    given = _Given({}, [{} for _ in range(m.N)], {}, {})
    out = []
    for line in derivation.lines:
        try:
            verdict = check_claim(solution, line.text)
        except ClaimError as exc:
            out.append(LineVerdict(line, unreadable(line.text, exc), False))
            continue
        if verdict.kind == "matrix":
            out.append(_matrix_line(m, line, verdict, given))
            continue
        reading = read(solution, line.text)
        q = reading.quantity
        claimed = _claimed(m, reading) if verdict.kind == "number" else None
        consistent, uses, flag = (verdict.holds, (), None) if claimed is None else \
            _carried(m, q, claimed, reading.rhs.decimals, given, verdict.holds)
        out.append(LineVerdict(line, verdict, consistent, uses, flag))
        if claimed is not None:
            _remember(q, claimed, line.number, given, reading.rhs.decimals)
    return out


def _matrix_line(m: Model, line: Line, verdict: Verdict, given: _Given) -> LineVerdict:
    """A matrix line: a bracketed matrix of numbers is carried forward entry by entry (Delta2 = [[…]] then
    dE/dW2 from it); a matrix formula is right or wrong on its own."""
    reading = read_matrix(m, line.text)
    value = None if reading is None else reading.value
    if reading is not None and value is not None and value.scalar and reading.number is not None \
            and reading.quantity.shape == (1, 1):
        entries = [(reading.quantity.cells[0][0], WrittenEntry(reading.number, reading.written))]
    elif reading is None or value is None or value.literals is None or value.shape != reading.quantity.shape:
        return LineVerdict(line, verdict, verdict.holds)
    else:
        entries = [(q, entry) for qs, row in zip(reading.quantity.cells, value.literals) for q, entry in zip(qs, row)]
    consistent, flag = True, None
    uses: set[int] = set()
    claimed = [_entry_value(m, q, entry.rhs) for q, entry in entries]
    if any(v is None for v in claimed):
        return LineVerdict(line, verdict, verdict.holds)
    for (q, entry), value in zip(entries, claimed):
        held, used, why = _carried(m, q, value, entry.rhs.decimals, given, verdict.holds)
        consistent, flag = consistent and held, flag or why
        uses.update(used)
    for (q, entry), value in zip(entries, claimed):
        _remember(q, value, line.number, given, entry.rhs.decimals)
    return LineVerdict(line, verdict, consistent, tuple(sorted(uses)), flag)


def _claimed(m: Model, reading) -> Any:
    """The number a line claims, at 40 digits (None for one the checker cannot evaluate)."""
    return _entry_value(m, reading.quantity, reading.rhs)


def _entry_value(m: Model, q: Quantity, rhs) -> Any:
    try:
        return MP.re(m.at(rhs.expr, m.spec_point, q.sample or 0))
    except Undefined:
        return None


def _remember(q: Quantity, value: Any, number: int, given: _Given, decimals: int | None) -> None:
    key = (q.symbol, q.sample or 0) if q.per_sample else (q.symbol, None)
    if q.per_sample:
        given.samples[q.sample or 0][q.symbol] = value
    else:
        given.batch[q.symbol] = value
    given.line_of[key], given.decimals[key] = number, decimals


def _carried(m: Model, q: Quantity, claimed: Any, decimals: int | None, given: _Given, holds: bool
             ) -> tuple[bool, tuple[int, ...], str | None]:
    """Whether a number follows from the student's earlier values by the quantity's own one-step formula
    (without one, whether it holds)."""
    step = _one_step(m, q)
    if step is None:
        return holds, (), None
    formula, samples = step
    formula = _through_unwritten(m, formula, samples, given)
    point = _overridden(m.spec_point, given)
    try:
        recomputed = MP.fsum(MP.re(m.at(formula, point, n)) for n in samples)
        slack = _rounding_slack(m, formula, samples, given, point)
    except Undefined:
        return False, (), None
    uses = _uses(formula, samples, given)
    consistent = abs(recomputed - claimed) <= tolerance(decimals, recomputed, claimed) + slack
    return consistent, uses, _implausible(m, formula, samples, given) if consistent and uses else None


def _through_unwritten(m: Model, formula: Expr, samples: list[int], given: _Given) -> Expr:
    """The formula with each δ and ∂E/∂a the student did not write replaced by its own formula, down to values
    they did: delta_o1 follows from their o1 = 0.75 through the dE/do1 = o1 - y1 they never wrote down."""
    adjoints = {m.d.adjoint[v]: m.d.gradient[v] for v in m.d.backward_order}
    for _ in range(4 * m.spec.depth + 4):
        unwritten = {s: adjoints[s] for s in formula.free_symbols if s in adjoints and not given.wrote(s, samples)}
        if not unwritten:
            break
        formula = formula.xreplace(unwritten)
    return formula


def _rounding_slack(m: Model, formula: Expr, samples: list[int], given: _Given, point: Point) -> Any:
    """How far the student's own rounding of the values a line uses can move it (first order): Σ |∂f/∂v| · ½ unit
    of v's last decimal, so a line worked from o1 = 0.75 (for 0.7514) follows from it."""
    total = MP.mpf(0)
    for s in formula.free_symbols:
        for key in [(s, None)] + [(s, n) for n in samples]:
            places = given.decimals.get(key)
            if key not in given.line_of or places is None or places < 1:
                continue                    # an integer (or 1.) claims no rounding worth carrying
            slope = sp.diff(formula, s)
            half = MP.mpf(5) / MP.mpf(10) ** (places + 1)
            total += half * abs(MP.fsum(MP.re(m.at(slope, point, n)) for n in (samples if key[1] is None else [key[1]])))
    return total


def _one_step(m: Model, q: Quantity) -> tuple[Expr, list[int]] | None:
    """The quantity's formula in the values one step before it, and the samples it sums over."""
    d, net = m.d, m.net
    samples = [q.sample or 0] if q.per_sample else list(range(m.N))
    if q.kind == "forward" and q.target in net.definitions:
        return net.definitions[q.target], samples
    if q.kind in ("adjoint", "gradient") and q.target in d.gradient:
        return d.gradient[q.target], samples
    if q.kind == "update" and q.target in m.grad:
        return q.target - m.step(q.target, m.grad[q.target]), [0]
    if q.kind == "local":
        return q.symbol, [q.sample or 0]         # do1/dz_o1 = o1*(1 - o1): from the student's o1
    return None


def _overridden(point: Point, given: _Given) -> Point:
    return replace(point, batch={**point.batch, **given.batch},
                   samples=[{**sample, **mine} for sample, mine in zip(point.samples, given.samples)])


def _uses(formula: Expr, samples: list[int], given: _Given) -> tuple[int, ...]:
    used = set()
    for s in formula.free_symbols:
        for key in [(s, None)] + [(s, n) for n in samples]:
            if key in given.line_of:
                used.add(given.line_of[key])
    return tuple(sorted(used))


def _implausible(m: Model, formula: Expr, samples: list[int], given: _Given) -> str | None:
    """A line that follows only from an earlier value of 0 where the truth is not: consistency proves nothing."""
    for s in sorted(formula.free_symbols, key=str):
        for n in [None, *samples]:
            mine = given.batch.get(s) if n is None else given.samples[n].get(s)
            if mine is None or mine != 0:
                continue
            true = MP.re(m.at(s, m.spec_point, n or 0))
            if abs(true) > MP.mpf("1e-12"):
                return (f"it follows from line {given.line_of[(s, n)]}'s value 0, where the true value is "
                        f"{rounded_text(true, 6)}: following from it shows nothing")
    return None


# -- reports ---------------------------------------------------------------------------------------

def _first_wrong(rows: list[LineVerdict]) -> int | None:
    return next((r.line.number for r in rows if not r.verdict.holds), None)


def _carried_words(r: LineVerdict) -> str | None:
    """What the line's consistency says, in a sentence (None where it adds nothing)."""
    lines = ", ".join(str(n) for n in r.uses)
    if r.flag:
        return f"consistent with your line {lines}, but {r.flag}"
    if not r.verdict.holds and r.consistent and r.uses:
        return f"consistent with your line{'s' if len(r.uses) > 1 else ''} {lines}: the error is carried forward from there"
    if r.verdict.holds and not r.consistent and r.uses:
        return f"right, but it does not follow from your line{'s' if len(r.uses) > 1 else ''} {lines}"
    return None


def _text_report(graded: list[tuple[Derivation, list[LineVerdict]]]) -> str:
    out = []
    for derivation, rows in graded:
        held = sum(r.verdict.holds for r in rows)
        who = f" ({plain_text(derivation.student)})" if derivation.student else ""
        first = _first_wrong(rows)
        tail = f"; the first wrong line is line {first}" if first is not None else ""
        out.append(f"{plain_text(derivation.source)}{who}: {len(rows)} claims, {held} hold, {len(rows) - held} do not{tail}")
        for r in rows:
            v = r.verdict
            out.append(f"[line {r.line.number}] {plain_text(r.line.text)}")
            if v.holds:
                out.append("    holds")
            else:
                out.append(f"    does not hold: expected {v.expected}" if v.expected else "    does not hold")
                out.append(f"    diagnosis: {v.diagnosis}")
            words = _carried_words(r)
            if words:
                out.append(f"    {words}")
    return "\n".join(out) + "\n"


def _json_report(graded: list[tuple[Derivation, list[LineVerdict]]]) -> str:
    derivations: list[dict[str, Any]] = []
    for derivation, rows in graded:
        lines = []
        for r in rows:
            entry = {"line": r.line.number, "claim": r.line.text, "holds": r.verdict.holds,
                     "consistent": r.consistent, "uses": list(r.uses), "flag": r.flag}
            entry.update({k: v for k, v in asdict(r.verdict).items() if k not in entry})
            lines.append(entry)
        item: dict[str, Any] = {"source": derivation.source, "first_wrong": _first_wrong(rows), "lines": lines}
        if derivation.student:
            item["student"] = derivation.student
        derivations.append(item)
    total = sum(len(rows) for _, rows in graded)
    held = sum(r.verdict.holds for _, rows in graded for r in rows)
    summary = {"claims": total, "hold": held, "fail": total - held,
               "misconceptions": misconceptions((d.source, r.verdict) for d, rows in graded for r in rows)}
    return json.dumps({"derivations": derivations, "summary": summary}, indent=2, ensure_ascii=False) + "\n"


def _md_report(graded: list[tuple[Derivation, list[LineVerdict]]]) -> str:
    out = ["# derive check: derivations", ""]
    for derivation, rows in graded:
        who = f" ({md_text(derivation.student)})" if derivation.student else ""
        first = _first_wrong(rows)
        out += [f"## {md_text(derivation.source)}{who}", "",
                f"The first wrong line is line {first}." if first is not None else "Every line holds.", "",
                "| line | claim | verdict | consistent | uses | diagnosis |", "| --- | --- | --- | --- | --- | --- |"]
        for r in rows:
            verdict = "holds" if r.verdict.holds else "**does not hold**"
            note = " ".join(t for t in (r.verdict.diagnosis, _carried_words(r)) if t)
            out.append(f"| {r.line.number} | {md_code(r.line.text)} | {verdict} | {'yes' if r.consistent else 'no'} | "
                       f"{', '.join(str(n) for n in r.uses)} | {md_text(note)} |")
        out.append("")
    return "\n".join(out)


def _csv_report(graded: list[tuple[Derivation, list[LineVerdict]]]) -> str:
    """One row per line for a gradebook: student, source, line, claim, holds, consistent, uses, mistake, quantity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "source", "line", "claim", "holds", "consistent", "uses", "mistake", "quantity"])
    for derivation, rows in graded:
        for r in rows:
            writer.writerow([spreadsheet_cell(plain_text(derivation.student)), spreadsheet_cell(plain_text(derivation.source)),
                             r.line.number, spreadsheet_cell(plain_text(r.line.text)), str(r.verdict.holds).lower(),
                             str(r.consistent).lower(), " ".join(str(n) for n in r.uses), r.verdict.mistake or "",
                             spreadsheet_cell(r.verdict.quantity)])
    return out.getvalue()


REPORTS = {"text": _text_report, "md": _md_report, "json": _json_report, "csv": _csv_report}


def grade_derivations(spec: str, files: Sequence[str], fmt: str = "text") -> Grading:
    """`derive check SPEC --derivation FILE …`: each file's lines graded, reported in ``fmt``."""
    derivations = [load_derivation(path) for path in files]
    solution = solve(spec)
    graded = [(derivation, grade_derivation(solution, derivation)) for derivation in derivations]
    return Grading(REPORTS[fmt](graded), all(r.verdict.holds for _, rows in graded for r in rows))
