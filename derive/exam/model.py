"""An exam as data: every generated variant of one template spec, and what names and regenerates it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from derive.exam.questions import Variant
from derive.exam.variants import ExamConfig
from derive.model.spec import Spec


def base_name(source: str) -> str:
    """A spec's name without its directory, so that no absolute path reaches a document."""
    return source.replace("\\", "/").rsplit("/", 1)[-1]



@dataclass(frozen=True)
class Exam:
    """Every generated variant of one template spec, in order."""

    template: Spec
    cfg: ExamConfig
    seed: int
    count: int                   # --variants: how many the exam has (``variants`` may hold only one)
    variants: tuple[Variant, ...]
    spec_from_out: str = ""      # the template as the exam's folder reaches it (../specs/t.toml), or its name

    @property
    def name(self) -> str:
        """The template's name as a user types it (file name or example name, no directory)."""
        return base_name(self.template.source)

    def command(self, variant: int) -> str:
        """The command line that regenerates one variant alone, run in the exam's folder (where the sheet is).

        Written from that folder, it reads the same wherever the folder is: a run into another folder
        with the template at the same place relative to it writes the same bytes."""
        spec = self.spec_from_out or self.name
        return shlex.join(["derive", "exam", spec, "--variants", str(self.count), "--seed", str(self.seed),
                           "--only", str(variant), "--out", "."])

    def json(self) -> list[dict[str, Any]]:
        """answers.json: one object per variant with its number, seed, complete spec and questions."""
        return [{"variant": v.number, "seed": v.seed, "exam_seed": self.seed, "spec": v.raw,
                 "questions": [q.json() for q in v.questions]} for v in self.variants]
