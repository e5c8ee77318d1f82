"""Moodle's Cloze syntax for the questions of a variant: numerical parts with tolerances, choices, shapes."""

from __future__ import annotations

import html
from decimal import Decimal

from derive.exam.questions import Question

# Moodle's Cloze parser (question/type/multianswer/questiontype.php, qtype_multianswer_extract_question)
# ends an answer at the first ~, # or } not after \, & or &amp;, and a feedback at ~ or }; then it
# decodes HTML entities once and un-escapes \} and \# only (\~, \/, \" keep their backslash). So
# the characters that delimit go in as numeric entities, and & as &amp;.
CLOZE_ENTITIES = {"&": "&amp;", "}": "&#125;", "#": "&#35;", "~": "&#126;", "\\": "&#92;", "{": "&#123;"}
CLOZE_LEADING = {"=": "&#61;", "%": "&#37;"}     # an answer that starts with = (right) or %n% (a fraction)


def cloze_escape(text: str, shown: bool = True) -> str:
    """Text inside a Cloze field, as Moodle's parser reads it back exactly.

    ``shown``: an option or a feedback, displayed as HTML, so < > & stay visible characters; else a
    short answer, compared with what the student types, where * (the wildcard) is written \\*.

    >>> cloze_escape("a/b ~ c} & d <"), cloze_escape("3*2", shown=False)
    ('a/b &#126; c&#125; &amp;amp; d &amp;lt;', '3\\\\*2')
    """
    body = html.escape(text, quote=False) if shown else text
    out = "".join(CLOZE_ENTITIES.get(c, c) for c in body)
    if not shown:
        out = out.replace("*", "\\*")      # shortanswer's literal asterisk (question/type/shortanswer)
    return CLOZE_LEADING.get(out[:1], out[:1]) + out[1:]


def html_text(text: str) -> str:
    """Text as HTML, with braces as entities so that no user text can open a Cloze field."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def math_html(latex: str) -> str:
    """Generated LaTeX inside HTML for MathJax: only &, < and > become entities (no user text gets here)."""
    return html.escape(latex, quote=False)


def _number(value: float) -> str:
    """A number as a plain decimal (0.0000265, never 2.65e-05): the form every Cloze parser reads."""
    return format(Decimal(repr(value)), "f")


def shape_spellings(shape: str) -> tuple[str, ...]:
    """The ways a student types a shape "2x3" that count: 2x3, 2 x 3, 2×3, 2X3, 2*3, (2, 3)."""
    rows, cols = shape.split("x")
    return tuple(dict.fromkeys([f"{rows}x{cols}", f"{rows} x {cols}", f"{rows}×{cols}", f"{rows} × {cols}",
                                f"{rows}X{cols}", f"{rows}*{cols}", f"({rows}, {cols})", f"({rows},{cols})"]))


def cloze(q: "Question") -> str:
    """One embedded answer field, weighted by the question's points: {2:NUMERICAL:=…:tol}, {1:MULTICHOICE_V:…}."""
    # a typical mistake earns [exam].partial_credit percent: %25% before it (nothing for 0 %, Moodle's default)
    credit = f"%{q.partial}%" if q.partial else ""
    if q.kind in ("choice", "formula"):
        options = "~".join(("=" if o.mistake is None else credit) + cloze_escape(o.plain)
                           + ("" if o.mistake is None else "#" + cloze_escape(f"Not quite: {o.mistake}."))
                           for o in q.options)
        # formula: shuffled (MULTICHOICE_VS), the right one listed first
        return "{" + str(q.points) + (":MULTICHOICE_V:" if q.kind == "choice" else ":MULTICHOICE_VS:") + options + "}"
    if q.kind == "shape":
        return "{" + str(q.points) + ":SHORTANSWER:" + "~".join("=" + cloze_escape(s, shown=False) for s in shape_spellings(str(q.answer))) + "}"
    if not isinstance(q.answer, float) or q.tolerance is None:
        raise AssertionError(f"a {q.kind} question without a numerical answer and tolerance")
    # the right answer first: Moodle grades by the first answer whose tolerance holds the response (qtype_numerical's
    # question_first_matching_answer_grading_strategy), so a typical mistake (never within the right answer's
    # tolerance, questions.py) takes only what the right one does not, at 0 % with its diagnosis
    mistakes = "".join(f"~%{q.partial}%" + _number(o.value) + ":" + _number(q.tolerance) + "#"
                       + cloze_escape(f"Not quite: {o.mistake}.") for o in q.mistakes if o.value is not None)
    return "{" + str(q.points) + ":NUMERICAL:=" + _number(q.answer) + ":" + _number(q.tolerance) + mistakes + "}"
