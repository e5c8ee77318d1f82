"""QTI for the LMSs: 1.2 as Canvas reads it, 2.1 for OpenOlat, ILIAS, Inspera and ONYX; each question a group drawing one variant.

Canvas (Classic Quizzes) runs Instructure's QTIMigrationTool on a QTI 1.2 package, then reads its QTI 2.1
output (canvas-lms gems/plugins/qti_exporter). What that reading implies, and this module follows:

- A numerical answer is a condition ``or(varequal E, and(vargte E − m, varlte E + m))``: Canvas takes E
  from the ``varequal`` and the margin as ``varlte − E``; a bare ``varequal`` imports as no answer, and
  every numerical condition imports as a correct answer, so a wrong value cannot carry feedback there.
- A choice is right where its condition sets SCORE above 0; feedback-only conditions come before the
  scoring one (a later match would reset the choice to wrong).
- Identifiers are ``[A-Za-z_][A-Za-z0-9_-]*`` and never end in ``_ans`` or ``_str`` (the tool strips those
  suffixes from labels but not from the values that refer to them).
- The quiz settings (assessment_meta.xml) apply only from a folder named as the assessment's ident.

A student meets each question as an item of its own group, so every item carries the network it is about.

QTI 2.1 (the IMS specification itself, imsqti_v2p1) grades in the item's responseProcessing: a float response
``equal`` to the correct one within an absolute tolerance, then each typical mistake's value (or wrong choice)
setting the FEEDBACK outcome that shows its modalFeedback; the test selects one item per section.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping, Sequence

from derive.exam.moodle import shape_spellings
from derive.exam.questions import Option, Question

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
QUESTION_TYPES = {"choice": "multiple_choice_question", "formula": "multiple_choice_question",
                  "shape": "short_answer_question"}         # every other kind: numerical_question
ZIP_TIME = (1980, 1, 1, 0, 0, 0)                            # the same bytes for the same exam


@dataclass(frozen=True)
class Choice:
    ident: str                  # c1, c2, … within its item
    latex: str
    mistake: str | None         # None for the right one; else the typical mistake, shown as its feedback


@dataclass(frozen=True)
class Feedback:
    """A typical mistake a QTI 2.1 item recognises: the response it gives, and what the student is told."""

    ident: str                  # the FEEDBACK outcome's value: M1, M2, …
    value: str                  # a choice's identifier, or the mistaken number as a plain decimal
    mistake: str


@dataclass(frozen=True)
class Item:
    """One variant's question, in the forms Canvas (QTI 1.2) and QTI 2.1 players grade it."""

    ident: str
    variant: int                # which sheet (1-based) the item's network is
    question: Question
    question_type: str
    exact: str = ""             # numerical: the answer and its bounds, plain decimals
    lower: str = ""
    upper: str = ""
    choices: tuple[Choice, ...] = ()
    accepted: tuple[str, ...] = ()      # short answer: every spelling that counts
    margin: str = ""                    # numerical: the absolute tolerance
    mistaken: tuple[Feedback, ...] = () # what typical mistakes answer, for QTI 2.1's feedback

    @property
    def base_type(self) -> str:
        """QTI 2.1's type of the response."""
        return "identifier" if self.choices else "string" if self.accepted else "float"

    @property
    def correct(self) -> str:
        if self.choices:
            return next(c.ident for c in self.choices if c.mistake is None)
        return self.accepted[0] if self.accepted else self.exact


@dataclass(frozen=True)
class Group:
    """The i-th question of every variant: Canvas draws one of them for each student."""

    ident: str
    title: str
    points: int
    items: tuple[Item, ...]


def assessment_ident(seed: int) -> str:
    """The assessment's identifier (and, for Canvas, its folder's name): no dash, which a negative seed has."""
    return f"derive_exam_{seed}".replace("-", "m")


def decimal(value: Decimal) -> str:
    """A plain decimal with a point, never an exponent (Canvas reads 2,5 as 2 and 1e-05 as 1)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def item(ident: str, variant: int, q: Question) -> Item:
    """The Canvas form of one question: numerical with its bounds, a choice with feedback, or accepted spellings."""
    question_type = QUESTION_TYPES.get(q.kind, "numerical_question")
    if q.kind in ("choice", "formula"):
        choices = tuple(Choice(f"c{i}", o.latex, o.mistake) for i, o in enumerate(shown_options(ident, q), 1))
        mistaken = tuple(Feedback(f"M{k}", c.ident, c.mistake or "") for k, c in enumerate(
            (c for c in choices if c.mistake is not None), 1))
        return Item(ident, variant, q, question_type, choices=choices, mistaken=mistaken)
    if q.kind == "shape":
        return Item(ident, variant, q, question_type, accepted=shape_spellings(str(q.answer)))
    if not isinstance(q.answer, float) or q.tolerance is None:
        raise AssertionError(f"a {q.kind} question without a numerical answer and tolerance")
    exact, margin = Decimal(repr(q.answer)), abs(Decimal(repr(q.tolerance)))
    mistaken = tuple(Feedback(f"M{k}", decimal(Decimal(repr(o.value))), o.mistake or "")
                     for k, o in enumerate(q.mistakes, 1) if o.value is not None)
    return Item(ident, variant, q, question_type, decimal(exact), decimal(exact - margin), decimal(exact + margin),
                margin=decimal(margin), mistaken=mistaken)


def shown_options(ident: str, q: Question) -> tuple[Option, ...]:
    """A choice's options in the order an LMS shows them: the sheet's; a formula question's (whose pool lists the
    right formula first) in a fixed order of its own per item."""
    if q.kind != "formula":
        return q.options
    return tuple(sorted(q.options, key=lambda o: hashlib.sha256(f"{ident}:{o.plain}".encode()).hexdigest()))


def groups(variants: Sequence[Sequence[Question]], prefix: str) -> tuple[Group, ...]:
    """One group per question position, holding that question of every variant, in variant order."""
    count = len(variants[0])
    if any(len(qs) != count for qs in variants):
        raise AssertionError("the variants of one exam ask different numbers of questions")
    out = []
    for i in range(count):
        items = tuple(item(f"{prefix}_v{v}_q{i + 1}", v, qs[i]) for v, qs in enumerate(variants, 1))
        kinds = {it.question.kind for it in items}
        title = f"Question {i + 1}" + (f" ({kinds.pop()})" if len(kinds) == 1 else "")
        out.append(Group(f"{prefix}_q{i + 1}", title, variants[0][i].points, items))
    return tuple(out)


@dataclass(frozen=True)
class Part:
    """One interaction of a QTI 2.1 item: a question graded under a response and a feedback outcome of its own."""

    response: str               # RESPONSE; RESPONSE_1, RESPONSE_2, … in an item of several parts
    feedback: str               # FEEDBACK; FEEDBACK_1, … likewise
    item: Item
    source: str = ""            # an update carrying a gradient forward: that part's response
    intercept: str = ""         # and its value from the student's gradient g: intercept − rate·g
    rate: str = ""


@dataclass(frozen=True)
class Task:
    """A QTI 2.1 assessmentItem: one question, or with [exam].carry_forward a gradient and the update that
    follows from the student's answer to it (QTI's response processing reads only its own item's responses)."""

    ident: str
    variant: int
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Section:
    """The i-th question (or carried-forward pair) of every variant: the test draws one of them."""

    ident: str
    title: str
    points: int
    items: tuple[Task, ...]


def sections(variants: Sequence[Sequence[Question]], prefix: str) -> tuple[Section, ...]:
    """QTI 2.1's sections: QTI 1.2's groups, each carried-forward update joined to its gradient's item."""
    pairs = {i: q.carried.position - 1 for i, q in enumerate(variants[0]) if q.carried}
    if any({i: q.carried.position - 1 for i, q in enumerate(qs) if q.carried} != pairs for qs in variants):
        raise AssertionError("the variants of one exam carry different questions forward")
    plain = groups(variants, prefix)
    out = []
    for i, g in enumerate(plain):
        if i in pairs:
            continue
        joined = [j for j, source in pairs.items() if source == i]
        if not joined:
            out.append(Section(g.ident, g.title, g.points,
                               tuple(Task(it.ident, it.variant, (Part("RESPONSE", "FEEDBACK", it),)) for it in g.items)))
            continue
        update = plain[joined[0]]
        tasks = tuple(_pair(a, b, joined[0]) for a, b in zip(g.items, update.items))
        out.append(Section(f"{g.ident}_q{joined[0] + 1}", f"Questions {i + 1} and {joined[0] + 1}",
                           g.points + update.points, tasks))
    return tuple(out)


def _pair(gradient: Item, update: Item, position: int) -> Task:
    carried = update.question.carried
    if carried is None:
        raise AssertionError("a carried-forward pair without the update's formula")
    intercept, rate = (decimal(Decimal(n.plain)) for n in (carried.intercept, carried.rate))
    return Task(f"{gradient.ident}_q{position + 1}", gradient.variant,
                (Part("RESPONSE_1", "FEEDBACK_1", gradient),
                 Part("RESPONSE_2", "FEEDBACK_2", update, "RESPONSE_1", intercept, rate)))


def package(ident: str, files: Mapping[str, str]) -> bytes:
    """The zip Canvas imports: imsmanifest.xml at the top, the assessment and its settings in a folder named
    as the assessment's ident."""
    if not IDENT.fullmatch(ident) or ident.lower().endswith(("_ans", "_str")):
        raise AssertionError(f"not an identifier Canvas keeps: {ident!r}")
    return zipped({"imsmanifest.xml": files["manifest"], f"{ident}/{ident}.xml": files["assessment"],
                   f"{ident}/assessment_meta.xml": files["meta"]})


def zipped(names: Mapping[str, str]) -> bytes:
    """A zip of text files in the given order, with fixed times, so the same exam gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in names.items():
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"), compresslevel=9)
    return buffer.getvalue()
