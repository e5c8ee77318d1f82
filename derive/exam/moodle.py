"""Moodle's Cloze syntax for the questions of a variant: numerical parts with tolerances, choices, shapes."""

from __future__ import annotations

import html
from decimal import Decimal

from derive.exam.questions import Question

CLOZE_SPECIAL = "\\}#~/\""      # characters a Cloze answer or feedback must escape with a backslash


def cloze_escape(text: str) -> str:
    """Text inside a Cloze field: }, #, ~, /, " and \\ escaped with a backslash, then & < > as entities.

    >>> cloze_escape("a/b ~ c} & d")
    'a\\\\/b \\\\~ c\\\\} &amp; d'
    """
    out = "".join("\\" + c if c in CLOZE_SPECIAL else c for c in text)
    return html.escape(out, quote=False)


def html_text(text: str) -> str:
    """Text as HTML, with braces as entities so that no user text can open a Cloze field."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def math_html(latex: str) -> str:
    """Generated LaTeX inside HTML for MathJax: only &, < and > become entities (no user text gets here)."""
    return html.escape(latex, quote=False)


def _number(value: float) -> str:
    """A number as a plain decimal (0.0000265, never 2.65e-05): the form every Cloze parser reads."""
    return format(Decimal(repr(value)), "f")


def cloze(q: "Question") -> str:
    """One embedded answer field: {1:NUMERICAL:=…:tol}, {1:MULTICHOICE_V:…}, {1:SHORTANSWER:…}."""
    if q.kind == "choice":
        options = "~".join(("=" if o.mistake is None else "") + cloze_escape(o.plain)
                           + ("" if o.mistake is None else "#" + cloze_escape(f"Not quite: {o.mistake}."))
                           for o in q.options)
        return "{1:MULTICHOICE_V:" + options + "}"
    if q.kind == "formula":
        options = "~".join(("=" if o.mistake is None else "") + cloze_escape(o.plain)
                           + ("" if o.mistake is None else "#" + cloze_escape(f"Not quite: {o.mistake}."))
                           for o in q.options)
        return "{1:MULTICHOICE_VS:" + options + "}"        # shuffled: the right formula is listed first
    if q.kind == "shape":
        rows, cols = str(q.answer).split("x")
        spellings = dict.fromkeys([f"{rows}x{cols}", f"{rows} x {cols}", f"{rows}×{cols}", f"{rows} × {cols}",
                                   f"{rows}X{cols}", f"{rows}*{cols}", f"({rows}, {cols})", f"({rows},{cols})"])
        return "{1:SHORTANSWER:" + "~".join("=" + cloze_escape(s) for s in spellings) + "}"
    if not isinstance(q.answer, float) or q.tolerance is None:
        raise AssertionError(f"a {q.kind} question without a numerical answer and tolerance")
    return "{1:NUMERICAL:=" + _number(q.answer) + ":" + _number(q.tolerance) + "}"
