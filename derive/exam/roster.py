"""A class list (--roster FILE.csv, columns name and id): which student gets which variant, for named sheets."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from pathlib import Path

from derive.errors import ExamError, InputError
from derive.io import read_text

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")        # it names the student's sheet file
MAX_STUDENTS = 10_000


@dataclass(frozen=True)
class Student:
    name: str                   # user text: escaped wherever it is printed
    id: str
    variant: int                # 1-based: the variant whose sheet the student gets


def load_roster(path: str | Path, variants: int | None = None) -> tuple[Student, ...]:
    """The students of a CSV class list, in its order, the k-th getting variant (k mod variants) + 1; without
    ``variants`` each student a variant of their own.

    Any error is one line naming the file, the row and the column."""
    try:
        text = read_text(Path(path))
    except InputError as exc:
        raise ExamError(f"--roster {path}: {exc}") from None
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))      # a spreadsheet's byte-order mark
    if not rows:
        raise ExamError(f"--roster {path}: the file is empty; expected a header row with the columns name and id")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("name", "id") if c not in header]
    if missing:
        raise ExamError(f"--roster {path}: row 1: no column {' or '.join(missing)}; expected a header row with the "
                        f"columns name and id (others are ignored), got {', '.join(rows[0]) or 'an empty row'}")
    at = {c: header.index(c) for c in ("name", "id")}
    students: list[Student] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], 2):
        if any(cell.strip() for cell in row):                   # a blank line is no student
            students.append(_student(path, number, row, at, seen))
    if not students:
        raise ExamError(f"--roster {path}: no students below the header row; expected one row per student")
    if len(students) > MAX_STUDENTS:
        raise ExamError(f"--roster {path}: {len(students)} students; expected at most {MAX_STUDENTS}")
    every = variants or len(students)
    return tuple(replace(s, variant=k % every + 1) for k, s in enumerate(students))


def _student(path: str | Path, number: int, row: list[str], at: dict[str, int], seen: dict[str, int]) -> Student:
    cells = {c: row[i].strip() if i < len(row) else "" for c, i in at.items()}
    for column, value in cells.items():
        if not value:
            raise ExamError(f"--roster {path}: row {number}, column {column}: empty; expected the student's {column}")
    if not ID.fullmatch(cells["id"]):
        raise ExamError(f"--roster {path}: row {number}, column id: {cells['id'][:40]!r}; expected letters, digits, "
                        f"'.', '_' or '-' (at most 64, it names the student's sheet file)")
    if cells["id"] in seen:
        raise ExamError(f"--roster {path}: row {number}, column id: {cells['id']!r} is also the id of row "
                        f"{seen[cells['id']]}; expected every student's id once")
    seen[cells["id"]] = number
    return Student(cells["name"], cells["id"], 0)
