"""The whole exam run as `derive exam` does it: draw the variants, make their files, write them all or none."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from derive.exam.generate import generate
from derive.exam.roster import load_roster
from derive.exam.sheets import STUDENT_FILE, VARIANT_FILE, Options, documents, pdfs, write
from derive.model.spec import load


class Progress:
    """Progress on standard error for long runs: a rewritten line on a terminal, else every tenth."""

    def __init__(self, stream: TextIO, minimum: int = 10):
        self.stream, self.minimum, self.last = stream, minimum, -1
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total < self.minimum:
            return
        if self.tty:
            end = "\n" if done == total else ""
            print(f"\rderive exam: {stage} {done}/{total}", end=end, file=self.stream, flush=True)
        elif done == total or done * 10 // total != self.last:
            self.last = done * 10 // total
            print(f"derive exam: {stage} {done}/{total}", file=self.stream, flush=True)


def from_folder(spec: str, out: str) -> str:
    """A spec file's path as seen from the folder ``out`` (a built-in example's name stays a name)."""
    path = Path(spec)
    if not path.is_file():
        return spec
    try:
        return Path(os.path.relpath(path.resolve(), Path(out).resolve())).as_posix()
    except ValueError:          # another drive (Windows): only the absolute path reaches it
        return path.resolve().as_posix()


def run(spec: str, variants: int | None, seed: int, out: str, opts: Options, only: int | None = None,
        jobs: int | None = None, roster: str | None = None) -> str:
    """Write the exam of template ``spec`` into ``out`` (only variant ``only``'s own files with it); say what was
    written. With a ``roster`` (a CSV class list) each student gets a named sheet, and without ``variants`` a
    variant of their own."""
    if roster is not None:          # before any work: a broken class list is refused in a line
        students = load_roster(roster, variants)
        variants, opts = variants or len(students), replace(opts, roster=students)
    variants = variants or 1
    progress = Progress(sys.stderr)
    exam = replace(generate(load(spec), variants, seed, only=only, jobs=jobs, progress=progress),
                   spec_from_out=from_folder(spec, out))
    texts = documents(exam, opts, jobs=jobs, progress=progress)
    if only:       # the variant's own files only: the folder of the full run keeps its answers.json
        texts = {name: data for name, data in texts.items() if VARIANT_FILE.fullmatch(name) or STUDENT_FILE.fullmatch(name)}
    files: dict[str, str | bytes] = dict(texts)
    if "pdf" in opts.formats:
        files.update(pdfs(texts, jobs))
    write(files, out, replace=not only)
    return f"wrote {len(files)} files for {len(exam.variants)} variant(s) into {out}"
