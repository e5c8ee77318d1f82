"""`derive check` for a class: answer sheets read, every claim graded, and the reports (text, Markdown, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from derive.check.evaluator import MP, rounded_text
from derive.check.mistakes import model
from derive.check.quantities import Quantity
from derive.check.verdict import (
    Verdict,
    check_claim,
    check_claims,
    explain_quantity,
    latex_explanation,
    matrix_explanation,
    read,
    unreadable,
)
from derive.derived.solution import solve
from derive.errors import ClaimError, InputError
from derive.io import read_text
from derive.text.escape import escape_markdown, spreadsheet_cell

MAX_CLAIMS_FILE = 1_000_000  # bytes of one --claims file


# -- the command line --------------------------------------------------------------------------

SHEET_ARGS = "claims given with --claim"


@dataclass(frozen=True)
class Sheet:
    """One --claims file (or the --claim options): where the claims came from, and their labels."""

    source: str
    student: str
    claims: tuple[tuple[str, str], ...]      # (label, text)
    problem: str = ""           # with --keep-going, why the file could not be read, file named (then no claims)


def load_claims(path: str) -> Sheet:
    """A TOML answer sheet: ``claims = ["…"]`` and/or ``[[claim]] text = "…" label = "1a"``; ``student`` optional."""
    raw = _read_sheet(path)
    for key in raw:
        if key not in ("claims", "claim", "student", "title"):
            raise ClaimError(f"{path}: {key}: unknown key; expected claims = [\"…\"], [[claim]] tables, student, title")
    student = raw.get("student", "")
    if not isinstance(student, str):
        raise ClaimError(f"{path}: student: expected a string")
    out = _plain_claims(path, raw.get("claims", []))
    out += _claim_tables(path, raw.get("claim", []), len(out))
    if not out:
        raise ClaimError(f"{path}: no claims; expected claims = [\"dE/dw5 = 0.17\"] or [[claim]] tables")
    if len(out) > 10_000:
        raise ClaimError(f"{path}: too many claims ({len(out)}; at most 10000)")
    return Sheet(path, student, tuple(out))


def read_answers(path: str) -> str:
    """A student's file as text; ClaimError for a file too large, unreadable or not UTF-8."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CLAIMS_FILE:
            raise ClaimError(f"{path}: the file is too large ({size} bytes; at most {MAX_CLAIMS_FILE})")
        return read_text(p)
    except OSError as exc:
        raise ClaimError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except InputError as exc:
        raise ClaimError(f"{path}: {exc}") from None


def read_toml(path: str, text: str) -> dict[str, Any]:
    """A student's TOML file; ClaimError naming the file where it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClaimError(f"{path}: not valid TOML: {exc}") from None


def _read_sheet(path: str) -> dict[str, Any]:
    """The TOML of an answer sheet; ClaimError for a file too large, unreadable, not UTF-8 or not TOML."""
    return read_toml(path, read_answers(path))


def _plain_claims(path: str, plain: Any) -> list[tuple[str, str]]:
    """``claims = ["…", …]``: each text labelled by its position, from 1."""
    if not isinstance(plain, list):
        raise ClaimError(f"{path}: claims: expected a list of strings like [\"dE/dw5 = 0.17\"]")
    out: list[tuple[str, str]] = []
    for i, text in enumerate(plain):
        if not isinstance(text, str):
            raise ClaimError(f"{path}: claims[{i}]: expected a string; got {type(text).__name__}")
        out.append((str(i + 1), text))
    return out


def _claim_tables(path: str, tables: Any, before: int) -> list[tuple[str, str]]:
    """``[[claim]]`` tables with ``text`` and an optional ``label`` (by default the position after ``before`` others)."""
    if not isinstance(tables, list):
        raise ClaimError(f"{path}: claim: expected [[claim]] tables")
    out: list[tuple[str, str]] = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or not isinstance(table.get("text"), str):
            raise ClaimError(f"{path}: claim[{i}].text: expected a string like \"dE/dw5 = 0.17\"")
        extra = set(table) - {"text", "label"}
        if extra:
            raise ClaimError(f"{path}: claim[{i}].{sorted(extra)[0]}: unknown key; expected text and label")
        label = table.get("label", before + len(out) + 1)
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise ClaimError(f"{path}: claim[{i}].label: expected a string or a number")
        out.append((str(label), table["text"]))
    return out


# --explain's text for one claim: plain, or for Markdown with the worked solution's math (None: none)
Explanation = str | tuple[str, str | None] | None


def _grade(solution, sheets: Sequence[Sheet], explain_: bool, latex: bool = False,
           keep_going: bool = False) -> list[tuple[Sheet, list[tuple[str, Verdict, Explanation]]]]:
    results = []
    for sheet in sheets:
        rows: list[tuple[str, Verdict, Explanation]] = []
        if sheet.problem:           # a class run goes on past one student's unreadable file
            rows.append(("file", Verdict("", False, "", f"This claim cannot be read: {sheet.problem}.",
                                         mistake="unreadable"), None))
        for label, text in sheet.claims:
            try:
                verdict = check_claim(solution, text)
            except ClaimError as exc:
                if keep_going:      # grading a class: one student's unreadable line is that line's verdict
                    rows.append((label, unreadable(text, exc), None))
                    continue
                where = f"{sheet.source}: claim {label}: " if sheet.source != SHEET_ARGS else f"--claim {label}: "
                raise ClaimError(where + str(exc)) from None
            explanation: Explanation = None
            if explain_ and verdict.kind == "matrix":
                plain = matrix_explanation(model(solution), text)
                explanation = (plain, None) if latex else plain
            elif explain_:
                q = read(solution, text).quantity
                plain = explain_quantity(model(solution), q)
                explanation = (plain, latex_explanation(solution, q)) if latex else plain
            rows.append((label, verdict, explanation))
        results.append((sheet, rows))
    return results


def _text_report(results) -> str:
    out = []
    for sheet, rows in results:
        held = sum(v.holds for _, v, _ in rows)
        who = f" ({plain_text(sheet.student)})" if sheet.student else ""
        out.append(f"{sheet.source}{who}: {_tally(len(rows), held, ',')}")
        for label, v, explanation in rows:
            out.append(f"[{label}] {plain_text(v.claim)}".rstrip())
            if v.holds:
                if v.kind == "number":
                    out.append(f"    holds: the true value {v.expected.split(' (')[0]} is {plain_text(_shown(v))} "
                               f"to {v.precision}" if v.precision != "exact" else "    holds exactly")
                else:
                    out.append(f"    holds for {v.precision}")
                if v.note:
                    out.append(f"    note: {v.note}")
            elif v.mistake == "unreadable":
                out.append(f"    cannot be read: {v.diagnosis.removeprefix('This claim cannot be read: ')}")
            else:
                out.append(f"    does not hold: expected {v.expected}")
                out.append(f"    diagnosis: {v.diagnosis}")
            if explanation:
                out += ["    " + line for line in explanation.splitlines()]
    common = _class_mistakes(results)
    if common:
        out.append("the class's most common mistakes:")
        out += [f"  {c['students']} student{'s' if c['students'] != 1 else ''} ({c['claims']} claim"
                f"{'s' if c['claims'] != 1 else ''}): {c['mistake']} in {plain_text(c['quantity'])}" for c in common]
    return "\n".join(out) + "\n"


def _class_mistakes(results) -> list[dict[str, Any]]:
    """The misconceptions of a class (two answer sheets or more): none for one sheet."""
    if len(results) < 2:
        return []
    return misconceptions((sheet.source, v) for sheet, rows in results for _, v, _ in rows)


def _tally(total: int, held: int, after_count: str) -> str:
    """'3 claims, 1 holds, 2 do not' with the verbs agreeing with their numbers."""
    failed = total - held
    return (f"{total} claim{'s' if total != 1 else ''}{after_count} {held} hold{'s' if held == 1 else ''}, "
            f"{failed} do{'es' if failed == 1 else ''} not")


def _shown(v: Verdict) -> str:
    """The claim's last right-hand side as written, without $…$ or a full stop: what "is … to 4 decimals" quotes."""
    last = re.split(r"=|≈|\\approx|\\simeq", v.claim)[-1]
    return " ".join(last.strip().strip("$").strip().rstrip(".;").split())


def plain_text(text: str) -> str:
    flat = " ".join(text.split())
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in flat)


def md_text(text: str) -> str:
    """User or derived text in Markdown (and a table cell): nothing in it is emphasis, math, HTML or a link."""
    return escape_markdown(plain_text(text))


def md_code(text: str) -> str:
    flat = plain_text(text)
    run = max((len(r) for r in re.findall(r"`+", flat)), default=0)
    fence = "`" * (run + 1)
    return f"{fence} {flat} {fence}"


def _md_report(results) -> str:
    out = ["# derive check", ""]
    for sheet, rows in results:
        held = sum(v.holds for _, v, _ in rows)
        who = f" ({md_text(sheet.student)})" if sheet.student else ""
        out += [f"## {md_text(sheet.source)}{who}", "", f"{_tally(len(rows), held, ':')}.", "",
                "| # | claim | verdict | expected | diagnosis |", "| --- | --- | --- | --- | --- |"]
        for label, v, _ in rows:
            verdict = "holds" if v.holds else "**cannot be read**" if v.mistake == "unreadable" else "**does not hold**"
            diag = md_text(v.diagnosis) if v.diagnosis else (md_text("note: " + v.note) if v.note else "")
            out.append(f"| {md_text(label)} | {md_code(v.claim)} | {verdict} | {md_code(v.expected)} | {diag} |")
        out.append("")
        for label, v, explanation in rows:
            if explanation:
                text, math = explanation
                out += [f"### {md_text(label)}: {md_text(v.quantity)}", "", "```text", text, "```", ""]
                if math:
                    out += [math, ""]
    common = _class_mistakes(results)
    if common:
        out += ["## The class's most common mistakes", "", "| mistake | quantity | students | claims |",
                "| --- | --- | --- | --- |"]
        out += [f"| {md_text(c['mistake'])} | {md_code(c['quantity'])} | {c['students']} | {c['claims']} |" for c in common]
        out.append("")
    return "\n".join(out)


def _json_report(results) -> str:
    claims = []
    for sheet, rows in results:
        for label, v, explanation in rows:
            entry = {"claim": v.claim, "holds": v.holds, "expected": v.expected, "diagnosis": v.diagnosis}
            entry.update({k: val for k, val in asdict(v).items() if k not in entry})
            entry.update({"source": sheet.source, "label": label})
            if sheet.student:
                entry["student"] = sheet.student
            if explanation is not None:
                entry["explanation"] = explanation
            claims.append(entry)
    total = len(claims)
    held = sum(c["holds"] for c in claims)
    summary = {"claims": total, "hold": held, "fail": total - held,
               "misconceptions": misconceptions((sheet.source, v) for sheet, rows in results for _, v, _ in rows)}
    return json.dumps({"claims": claims, "summary": summary}, indent=2, ensure_ascii=False) + "\n"


def _csv_report(results) -> str:
    """One row per claim for a gradebook: student, source, label, claim, holds, mistake, quantity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "source", "label", "claim", "holds", "mistake", "quantity"])
    for sheet, rows in results:
        for label, v, _ in rows:
            writer.writerow([spreadsheet_cell(plain_text(sheet.student)), spreadsheet_cell(plain_text(sheet.source)),
                             spreadsheet_cell(plain_text(label)), spreadsheet_cell(plain_text(v.claim)),
                             "true" if v.holds else "false", v.mistake or "", spreadsheet_cell(v.quantity)])
    return out.getvalue()


def misconceptions(verdicts: Iterable[tuple[str, Verdict]]) -> list[dict[str, Any]]:
    """A class's mistakes by quantity, the most common first: how many claims and how many students made each."""
    claims: dict[tuple[str, str], int] = {}
    students: dict[tuple[str, str], set[str]] = {}
    for who, v in verdicts:
        if v.holds or not v.mistake or v.mistake == "unreadable":     # not a mistake about backpropagation
            continue
        key = (v.mistake, v.quantity)
        claims[key] = claims.get(key, 0) + 1
        students.setdefault(key, set()).add(who)
    ranked = sorted(claims, key=lambda k: (-len(students[k]), -claims[k], k))
    return [{"mistake": k[0], "quantity": k[1], "claims": claims[k], "students": len(students[k])} for k in ranked]


@dataclass(frozen=True)
class Grading:
    """What `derive check` prints, and whether every claim held (exit status 0, else 3)."""

    report: str
    all_hold: bool


def _sheet(path: str, keep_going: bool) -> Sheet:
    """An answer sheet; with ``keep_going``, one that cannot be read is a sheet that says why."""
    try:
        return load_claims(path)
    except ClaimError as exc:
        if not keep_going:
            raise
        return Sheet(path, "", (), str(exc))


REPORTS = {"text": _text_report, "md": _md_report, "json": _json_report, "csv": _csv_report}


def grade(spec: str, claims: Sequence[str] = (), files: Sequence[str] = (), fmt: str = "text",
          explain_: bool = False, keep_going: bool = False) -> Grading:
    """`derive check SPEC`: the --claim texts and the --claims answer sheets graded, reported in ``fmt``."""
    sheets = [Sheet(SHEET_ARGS, "", tuple((str(i + 1), t) for i, t in enumerate(claims)))] if claims else []
    sheets += [_sheet(path, keep_going) for path in files]
    results = _grade(solve(spec), sheets, explain_, latex=fmt == "md", keep_going=keep_going)
    return Grading(REPORTS[fmt](results), all(v.holds for _, rows in results for _, v, _ in rows))


# -- benchmark ------------------------------------------------------------------------------------

def benchmark_grading(students: int = 200, per_student: int = 10, spec: str = "sigmoid-222") -> dict[str, float]:
    """Grade a synthetic class (numbers and expressions, right and wrong) and time it.

    Returns the seconds for building the solution and for grading, and claims per second.
    """
    start = time.perf_counter()
    solution = solve(spec)
    m = model(solution)
    _ = m.spec_point, m.points
    built = time.perf_counter() - start
    pool = _benchmark_pool(solution)
    rng = random.Random(1)
    sheets = [[rng.choice(pool) for _ in range(per_student)] for _ in range(students)]
    start = time.perf_counter()
    failed = 0
    for sheet in sheets:
        failed += sum(not v.holds for v in check_claims(solution, sheet))
    graded = time.perf_counter() - start
    total = students * per_student
    return {"setup_seconds": built, "grading_seconds": graded, "claims": total,
            "claims_per_second": total / graded, "failed": failed}


def _benchmark_pool(solution) -> list[str]:
    """Claims a class might hand in for the example: right and wrong, numbers and expressions."""
    m = model(solution)
    out = []
    for p in m.net.parameters[:6]:
        g = MP.re(m.spec_point.batch[m.grad[p]])
        name = m.plain[p]
        out += [f"dE/d{name} = {rounded_text(g, 4)}", f"dE/d{name} = {rounded_text(-g, 4)}", f"dE/d{name} = {rounded_text(2 * g, 3)}",
                f"{name}' = {rounded_text(m.spec_point.batch[m.after[p]], 3)}"]
        correct = m.correct_text(Quantity("gradient", "", m.grad[p], p, False, None))
        out += [f"dE/d{name} = {correct}", f"dE/d{name} = 2*{correct}", f"dE/d{name} = -{correct}"]
    return out
