"""Blackboard's own upload format: a tab-delimited text file per question, one row per variant (Original and Ultra).

Blackboard's QTI import skips every item with response processing and takes no numerical question, so derive
writes what Blackboard documents for "Upload Questions" into a pool, a question bank or a test: one question a
row, no header and no blank line, the fields separated by tabs and the question's type first:

- ``NUM``, the question, the answer, the tolerance (Blackboard's answer range ±);
- ``MC``, the question, then each answer followed by ``correct`` or ``incorrect`` (at most 100);
- ``FIB``, the question, then every answer that counts (at most 100).

A question's text is HTML in the subset that Ultra keeps (BbML: p, ul, li, strong, …; no table, no MathML, no
script), so the network's formulas are plain text in the syntax a student types for ``derive check``. The file of
question i holds that question of every variant: uploaded into a pool, a random block (Original) or a question
pool (Ultra) of one draws a variant per student.
"""

from __future__ import annotations

import re

from derive.exam.moodle import shape_spellings
from derive.exam.qti import shown_options
from derive.exam.questions import Question

KINDS = {"choice": "MC", "formula": "MC", "shape": "FIB"}     # every other kind: NUM
MAX_ANSWERS = 100
TAGS = frozenset({"p", "ul", "ol", "li", "strong", "em", "sub", "sup", "br", "div", "span"})   # BbML's, that derive uses


def field(text: str) -> str:
    """One field: a tab or a line break inside it would start another field or another question."""
    return re.sub(r"\s+", " ", text).strip()


def answers(ident: str, q: Question) -> list[str]:
    """The fields after the question's text."""
    if q.kind in ("choice", "formula"):
        return [f for o in shown_options(ident, q) for f in (o.plain, "correct" if o.mistake is None else "incorrect")]
    if q.kind == "shape":
        return list(shape_spellings(str(q.answer)))
    return [q.display, q.tolerance_text]


def row(ident: str, q: Question, text: str) -> str:
    """The question as one line of the upload file."""
    fields = answers(ident, q)
    if len(fields) > 2 * MAX_ANSWERS:
        raise AssertionError(f"{ident}: more answers than Blackboard takes")
    return "\t".join(field(f) for f in [KINDS.get(q.kind, "NUM"), text, *fields])
