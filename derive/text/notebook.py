"""A Solution in Jupyter: the whole worked solution as a cell's output, or one section or one chain of it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from derive.derived.solution import DISPLAYS, Solution
from derive.errors import RenderError
from derive.numeric.rounding import number
from derive.text.document import chain_equation
from derive.text.model import SECTIONS
from derive.text.render import document, environment, render_solution


@dataclass(frozen=True)
class Shown:
    """What a notebook cell shows: HTML (MathML formulas, inline figures) and Markdown for other front ends."""

    html: str
    markdown: str

    def _repr_html_(self) -> str:
        return self.html

    def _repr_markdown_(self) -> str:
        return self.markdown


def whole(solution: Solution) -> str:
    """The worked solution as an HTML fragment (no <html>, no <head>) with its style."""
    return _style() + render_solution(solution, "html", fragment=True)


def part(solution: Solution, name: str) -> Shown:
    """A section by its template block name (backward, general, …), or one parameter's chain rule (w5, b1)."""
    doc = document(solution)
    if name in SECTIONS:
        page = render_solution(solution, "html", fragment=True, doc=doc)
        found = re.search(rf'<section id="{name}">.*?</section>', page, re.S)
        if found is None:           # the history of a single step, the next updates of full-batch descent
            raise RenderError(f"{name}: this solution has no such section (one step has no loss history, and only "
                              f"online or mini-batch training has next updates)")
        markdown = render_solution(solution, "md", doc=doc)
        return Shown(_wrapped(found[0]), _markdown_section(markdown, found[0]))
    try:
        v = solution.symbol(name)
    except KeyError:
        raise RenderError(f"{name}: expected a section ({', '.join(SECTIONS)}) or a parameter's plain name "
                          f"(w5, b1, …)") from None
    if v not in solution.network.parameters:
        raise RenderError(f"{name}: expected a weight or a bias (its chain rule), or a section")
    eq = chain_equation(solution, v, 1)
    html = getattr(environment("html").get_template("macros.html.j2").module, "equation")(eq, "open")
    md = getattr(environment("md").get_template("macros.md.j2").module, "equation")(eq)
    return Shown(_wrapped(str(html)), str(md))


def _markdown_section(markdown: str, html: str) -> str:
    """The Markdown section with the same numbered title as the HTML one."""
    title = re.search(r"<h[23]>(.*?)</h[23]>", html)
    if title is None:
        return markdown
    start = markdown.find(f"## {title[1]}")
    if start < 0:
        start = markdown.find(f"### {title[1]}")
    end = markdown.find("\n## ", start + 1)
    return markdown[start:end if end > 0 else None]


def _wrapped(html: str) -> str:
    """A piece of the page in the page's own style (every rule is scoped to .derive, so the notebook keeps its own)."""
    return _style() + f'<div class="derive">{html}</div>'


def _style() -> str:
    """The page's own style sheet, so that a cell looks like the page."""
    page = environment("html").get_template("solution.html.j2")
    text = page.blocks["style"](page.new_context({}))
    return "<style>" + "".join(text) + "</style>\n"


def summary(solution: Solution) -> str:
    """The loss and every derivative as one displayed LaTeX equation, for front ends that show LaTeX only
    (nbconvert's PDF): what the worked solution arrives at."""
    d, step = solution.derivation, solution.training.first
    loss = number(step.loss)
    rows = [f"E &{loss.relation} {loss.tex}"]
    for p in solution.network.parameters:
        value = number(step.gradient[p])
        rows.append(rf"\frac{{\partial E}}{{\partial {d.names[p].latex}}} &{value.relation} {value.tex}")
    return r"$$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$$"


DISPLAYS.update({"text/html": whole, "text/markdown": lambda s: render_solution(s, "md"), "text/latex": summary,
                 "part": part})
