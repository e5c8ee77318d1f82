"""Chains of partial derivatives as a worked solution writes them: factors, products, sums of paths, their rows."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import sympy as sp
from sympy import Expr, Symbol

from derive.numeric.rounding import Number
from derive.text.model import Row
from derive.text.printer import joined_width

BREAK = "\x00"          # where a long sum may wrap onto a continuation line
TERMS_PER_LINE = 3      # terms of a sum on one line before it wraps
LINE = 64               # characters of a formula (printer.width) that fit on one line of the page (HTML: render.PRINTED_LINE)


# -- chains of partial derivatives -----------------------------------------------------------

class Factor(NamedTuple):
    partial: str                # ∂child/∂parent, or a δ reused from above
    expr: str                   # its expression in named symbols
    value: Number
    compound: bool              # expr needs parentheses inside a product


class Product(NamedTuple):
    parts: tuple[Chain, ...]
    label: str                  # underbrace label in the partials view ("" for none)


class Sum(NamedTuple):
    terms: tuple[Factor | Product, ...]     # one per path from the quantity up: never a Sum itself


# a chain of partial derivatives: one factor, a product of chains, or a sum of paths
Chain = Factor | Product | Sum


def render_chain(node: Chain, view: str, inner: bool = False) -> str:
    """One view of a chain: "partial" (∂ notation), "expr" (expressions) or "value" (numbers)."""
    if isinstance(node, Factor):
        if view == "partial":
            return node.partial
        if view == "expr":
            return rf"\left({node.expr}\right)" if inner and node.compound else node.expr
        return node.value.factor if inner else node.value.tex
    if isinstance(node, Product):
        joiner = " " if view == "partial" else r" \cdot "
        text = joiner.join(render_chain(p, view, True) for p in node.parts)
        if view == "partial" and node.label and BREAK not in text:
            return rf"\underbrace{{{text}}}_{{{node.label}}}"
        return text
    text = f" {BREAK}+ ".join(sum_lines([render_chain(t, view, True) for t in node.terms]))
    if not inner:
        return text
    return rf"\Bigl({text}\Bigr)" if view == "partial" else rf"\bigl({text}\bigr)"


SUM_LINE = LINE - 8     # a line of a sum, beside its left-hand side (∂E/∂b₁ =) or the indent of a continuation


def sum_lines(terms: Sequence[str]) -> list[str]:
    """The terms of a sum on lines: TERMS_PER_LINE a line, fewer where those would be wider than a line (two paths
    through a shared bias, each under its brace)."""
    lines: list[list[str]] = []
    for term in terms:
        if lines and len(lines[-1]) < TERMS_PER_LINE and joined_width(_between([*lines[-1], term], " + ")) <= SUM_LINE:
            lines[-1].append(term)
        else:
            lines.append([term])
    return [" + ".join(line) for line in lines]


def _between(items: Sequence[str], joiner: str) -> list[str]:
    """``items`` with ``joiner`` between each two: the pieces of ``joiner.join(items)``."""
    out = [joiner] * (2 * len(items) - 1)
    out[::2] = items
    return out


def row_pieces(rows: Sequence[Row]) -> list[str]:
    """The pieces of rows written on one line, ``" ".join(f"{r.relation} {r.tex}" for r in rows)``, for joined_width."""
    pieces: list[str] = []
    for row in rows:
        pieces += [" ", row.relation, " ", row.tex] if pieces else [row.relation, " ", row.tex]
    return pieces


def sum_width(node: Chain) -> int:
    """The largest number of terms in any sum of the chain."""
    if isinstance(node, Factor):
        return 1
    if isinstance(node, Product):
        return max(sum_width(p) for p in node.parts)
    return max([len(node.terms)] + [sum_width(t) for t in node.terms])


def only_argument(expr: Expr, s: Symbol) -> bool:
    """Whether s only appears as the one argument of a function: σ(−0.4) needs no (−0.4) bracket."""
    if not isinstance(expr, sp.Function) and all(a.is_Symbol for a in expr.args):
        return False        # w a, w + b, a symbol: no function has s for its argument (the forward pass's terms)
    parents = [node for node in sp.preorder_traversal(expr) if s in node.args]
    return bool(parents) and all(isinstance(node, sp.Function) and len(node.args) == 1 for node in parents)


def rows_of(views: Sequence[tuple[str, str]], value: Number, lhs: str = "") -> tuple[Row, ...]:
    """Rows from (relation, text) views, dropping repeats (of the lhs too), ending with the value.

    Long sums wrap onto continuation rows at their BREAK marks.
    """
    kept: list[tuple[str, str]] = []
    seen: set[str] = {lhs}
    for relation, text in views:
        if not text or text in seen or text == value.tex:
            continue
        seen.add(text)
        kept.append((relation, text))
    return wrapped(kept) + (Row(value.relation, value.tex),)


def wrapped(views: Sequence[tuple[str, str]]) -> tuple[Row, ...]:
    """Rows from (relation, text) views, each wrapping onto continuation rows at its BREAK marks."""
    rows: list[Row] = []
    for relation, text in views:
        first, *rest = text.split(BREAK)
        rows.append(Row(relation, first.rstrip()))
        rows.extend(Row("", line.strip()) for line in rest)
    return tuple(rows)


def split_sum(rows: list[Row]) -> tuple[Row, ...]:
    """Wrap a long row of ' + '-joined numbers onto continuation lines."""
    out = []
    for row in rows:
        terms = row.tex.split(" + ")
        if len(terms) <= TERMS_PER_LINE + 1 or row.tex.startswith(r"\sum"):
            out.append(row)
            continue
        chunks = [" + ".join(terms[i:i + TERMS_PER_LINE]) for i in range(0, len(terms), TERMS_PER_LINE)]
        out.append(Row(row.relation, chunks[0]))
        out.extend(Row("", "+ " + c) for c in chunks[1:])
    return tuple(out)
