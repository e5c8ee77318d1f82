"""The worked solution as data: build() puts a Solution's sections together into a Document for a View."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from sympy import Symbol

from derive.derived.solution import Solution
from derive.derived.verification import verify
from derive.errors import RenderError
from derive.numeric.rounding import DEFAULT_PRECISION, Rounding
from derive.text.builder import Builder
from derive.text.chains import LINE, row_pieces
from derive.text.model import (
    DETAILS,
    SECTIONS,
    After,
    Comparison,
    Document,
    Equation,
    Group,
    LaterUpdate,
    Outline,
    Part,
    View,
)
from derive.text.printer import joined_width
from derive.text.sections import (
    checked_sections,
    general_notation_rows,
    general_section,
    history_section,
    notation_rows,
    setup_section,
    step_loss,
)
from derive.version import __version__



def build(solution: "Solution", precision: int | Rounding = DEFAULT_PRECISION, view: View = View()) -> Document:
    """The document model of a solution: every section of the worked solution, as data (``view``: the sections
    and parameters a reader asked for).

    >>> from derive import solve
    >>> doc = build(solve("linear-221"))
    >>> doc.loss.equations[0].rows[-1].tex
    '0.3272405'
    """
    shown = solution.first_update       # online and in mini-batches: the first batch, as a batch of its own
    _detail(view.detail)
    sections = checked_sections(shown, view.full)         # first: a formula that does not hold stops here
    focus = _focus(shown, view.focus)
    b = Builder(shown, precision, focus, view.full)
    whole = b if shown is solution else Builder(solution, precision)      # the data, the history, the last step
    first, after = b.tr.first, b.tr.after
    worked = first.samples if view.full else first.samples[:1]      # short: sample 1, the rest in tables
    forward = tuple(b.forward_part(env, n) for n, env in enumerate(worked, 1))
    backward = tuple(b.backward_part(env, n) for n, env in enumerate(worked, 1))
    outputs = tuple(Comparison(b.names[o], b.d.names[o].plain, n, b.num(env[o]), b.num(env2[o]))
                    for n, (env, env2) in enumerate(zip(first.samples, after.samples), 1) for o in b.net.outputs)
    doc = Document(
        title=solution.spec.title or "Backpropagation, step by step",
        description=solution.spec.description,
        generator=f"derive {__version__}",
        precision=precision,
        rounding=rounding_policy(precision, solution.carry),
        setup=setup_section(whole),
        notation=notation_rows(b, brief=not view.full and "setup" in view.sections),
        notation_general=general_notation_rows(b.net, sections, view.full),
        forward=forward,
        loss=step_loss(b, whole),
        backward=backward,
        batch=b.batch_group(),
        general=general_section(b, sections),
        update=b.update_group(),
        update_matrices=b.update_matrices(),
        widest=max(b.weight_matrix(l).cols for l in range(b.spec.depth)),
        # short: the new outputs and loss in the table; the forward pass that gives them is the one above again
        after=After(tuple(b.forward_part(env, n) for n, env in enumerate(after.samples, 1)) if view.full else (), outputs,
                    Comparison("E", "E", 0, b.num(first.loss), b.num(after.loss))),
        history=history_section(whole),
        verification=verify(solution),
        formulas=sections.checks,
        samples=b.N,
        outline=_outline(view.sections, whole, bool(solution.later_updates)),
        focus=tuple(b.names[p] for p in focus),
        later=_later(solution, precision, focus, view.full),
        later_note=_later_note(solution),
    )
    if view.full:
        return doc
    return replace(_on_lines(doc), forward_table=b.forward_table(), backward_table=b.backward_table())


def _on_lines(doc: Document) -> Document:
    """The short document's derivations with each equation that fits on one line written on one line."""
    def group(g: Group) -> Group:
        return replace(g, equations=tuple(_on_one_line(eq) for eq in g.equations))

    def parts(items: tuple[Part, ...]) -> tuple[Part, ...]:
        return tuple(replace(p, groups=tuple(group(g) for g in p.groups)) for p in items)

    return replace(doc, forward=parts(doc.forward), loss=group(doc.loss), backward=parts(doc.backward),
                   batch=doc.batch and group(doc.batch), update=group(doc.update),
                   setup=replace(doc.setup, matrices=tuple(_on_one_line(eq) for eq in doc.setup.matrices)),
                   update_matrices=tuple(_on_one_line(eq) for eq in doc.update_matrices),
                   later=tuple(replace(u, update=group(u.update), matrices=tuple(_on_one_line(eq) for eq in u.matrices))
                               for u in doc.later))


def _on_one_line(eq: Equation) -> Equation:
    """A derivation whose rows fit on one line, written on one (a row without a relation continues the one
    before it: − η times the gradient matrix)."""
    return replace(eq, inline=joined_width([eq.lhs, *row_pieces(eq.rows)], LINE) <= LINE)


def _focus(solution: "Solution", names: Sequence[str]) -> tuple[Symbol, ...]:
    """The parameters ``--focus`` names, in the network's order; a name that is none is a one-line error."""
    known = {solution.network.names[p].plain: p for p in solution.network.parameters}
    for name in names:
        if name not in known:
            listed = ", ".join(list(known)[:12]) + (", …" if len(known) > 12 else "")
            raise RenderError(f"--focus: no parameter is named {name!r}; expected names like {listed}")
    return tuple(p for p in solution.network.parameters if known and p in {known[n] for n in names})


def _detail(detail: str) -> None:
    if detail not in DETAILS:
        raise RenderError(f"--detail: no detail is named {detail!r}; expected {' or '.join(DETAILS)}")


def _outline(sections: Sequence[str], b: Builder, later: bool) -> Outline:
    """The sections ``--sections`` asks for, in the documents' order; an unknown or empty one is an error.
    The next updates are a section only online and in mini-batches, with more than one update."""
    for key in sections:
        if key not in SECTIONS:
            raise RenderError(f"--sections: no section is named {key!r}; expected some of {', '.join(SECTIONS)}")
    asked = tuple(sections) != SECTIONS
    if "history" in sections and b.spec.steps == 1 and asked:
        raise RenderError("--sections: history: the spec trains one step ([train].steps = 1), so there is no "
                          "loss history to show")
    if "updates" in sections and not later and asked:
        raise RenderError("--sections: updates: every update of this spec uses the whole batch or there is only "
                          "one ([train].batch, [train].steps), so there are no next updates to work out")
    return Outline(tuple(k for k in SECTIONS if k in sections and (k != "updates" or later)))


def _later(solution: "Solution", precision: int | Rounding, focus: tuple[Symbol, ...], full: bool
           ) -> tuple[LaterUpdate, ...]:
    """Updates 2, 3, … worked out, each on its own batch (the data's sample numbers kept)."""
    later = solution.later_updates
    batches = solution.spec.optimizer.batches(len(later) + 1)[1:]
    return tuple(Builder(u, precision, focus, full).later_update(k, rows)
                 for k, (u, rows) in enumerate(zip(later, batches), 2))


def _later_note(solution: "Solution") -> str:
    """What the next updates are and how many of them are worked out."""
    later = solution.later_updates
    if not later:
        return ""
    optimizer = solution.spec.optimizer
    per = "one sample" if optimizer.batch == 1 else f"a mini-batch of {optimizer.batch} samples"
    shown = ("Update 2 is" if len(later) == 1 else "Updates 2 and 3 are" if len(later) == 2
             else f"Updates 2 to {len(later) + 1} are")
    text = (f"Each update takes {per}, so the parameters change before the next samples are seen. {shown} worked "
            f"out below the same way as the first, each from the parameters the one before it left")
    if optimizer.momentum:
        text += " and with the velocity it left"
    rest = solution.spec.steps - len(later) - 1
    if rest == 1:
        text += "; the last update ran the same way, and the loss history shows where it led"
    elif rest:
        text += f"; the other {rest} updates ran the same way, and the loss history shows where they led"
    return text + "."


def chain_equation(solution: "Solution", v: Symbol, n: int, precision: int | Rounding = DEFAULT_PRECISION) -> Equation:
    """The chain-rule equation of ∂E/∂v for sample ``n`` (from 1) of the first step, as the worked solution shows it:
    the chain of partials, their expressions, their numbers, the value."""
    samples = solution.training.first.samples
    return Builder(solution, precision).chain_equation(v, set(), samples[n - 1], n)


def rounding_policy(precision: int | Rounding, carry: Rounding | None = None) -> str:
    shown = precision if isinstance(precision, Rounding) else Rounding(precision)
    if carry is not None:
        return (f"Every value is rounded to {carry.words}, half away from zero, as soon as it is "
                f"computed, and the rounded value is what the next line uses, as in a calculation by hand: "
                f"each factor is rounded, then their product. Recomputing from the printed numbers gives "
                f"the printed results. A value written after $=$ is exact for the numbers it is made of; one "
                f"written after $\\approx$ is rounded. Section 9 compares the gradients with their exact "
                f"values. Steps after the first are computed without rounding.")
    return (f"Every quantity is computed exactly (as a fraction) or, where exponentials enter, with "
            f"60 significant digits (more where a unit saturates), and only rounded for display: to {shown.words}, "
            f"half away from zero. A value written after $=$ is exact; one written after $\\approx$ is "
            f"rounded. Each step uses the unrounded values of the steps before it, so recomputing "
            f"from the printed numbers can differ in the last digit.")
