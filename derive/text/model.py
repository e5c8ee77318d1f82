"""The worked solution's document model: sections, equations, tables and figures as data (templates lay them out)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Sequence

from derive.derived.checked import FormulaChecks
from derive.derived.verification import Verification
from derive.numeric.rounding import Number, Rounding
from derive.text.layout import DX, DY, MARGIN, PAGE_PX, PRINT_DX, PRINT_DY, RADIUS, Piece, Segment, label_width, place

# -- the model -----------------------------------------------------------------------------
# Prose fields are our own sentences with math between $…$; user text (title, description) is
# kept apart and escaped by the templates. Every LaTeX string comes from derive.latex.

@dataclass(frozen=True)
class Row:
    """One line of an aligned display: a relation (``=``, ``\\approx``, ``\\leftarrow``) and its
    right-hand side; an empty relation continues the previous line."""

    relation: str
    tex: str


@dataclass(frozen=True)
class Equation:
    """``lhs`` followed by its rows, e.g. formula, formula with numbers, value."""

    lhs: str
    rows: tuple[Row, ...]
    inline: bool = False        # short detail: its rows fit on one line, and are written one after the other


@dataclass(frozen=True)
class GradientRow:
    """One parameter's derivative from its δ, as its line would read: ∂E/∂w₆ = δ_{o₁} h₂ ≈ 0.138499 · 0.596884
    ≈ 0.0826676."""

    tex: str                    # ∂E/∂p
    plain: str                  # the parameter's plain name, w6
    rule: str                   # δ times what the parameter multiplies: δ_{o_{1}} h_{2}; δ alone for a bias
    relation: str               # before the numbers: = where every one is exact, else \approx
    numbers: str                # the rule with its numbers; empty where that is the value itself (a bias's δ)
    value: Number


@dataclass(frozen=True)
class GradientTable:
    """The short document's other parameters of a layer (one sample): a row each, after the layer's chains."""

    rows: tuple[GradientRow, ...]


@dataclass(frozen=True)
class Group:
    """A titled run of equations with an optional note before them, and in the short backward pass the table of
    the layer's other parameters after them."""

    title: str
    note: str
    equations: tuple[Equation, ...]
    table: GradientTable | None = None


@dataclass(frozen=True)
class Part:
    """One sample's share of a section (forward or backward pass)."""

    sample: int                 # 1-based
    title: str
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class ValueRow:
    """One quantity's value in each sample of a table, and for a parameter's derivative the batch's sum."""

    tex: str
    values: tuple[Number, ...]
    total: Number | None = None


@dataclass(frozen=True)
class SampleTable:
    """A batch's values sample by sample (the short document works sample 1 and tabulates them all)."""

    title: str
    note: str
    samples: tuple[int, ...]        # 1-based, the table's columns
    rows: tuple[ValueRow, ...]
    total: str = ""                 # the heading of the sum's column, in the last table of a run


@dataclass(frozen=True)
class NameRow:
    tex: str
    plain: str
    meaning: str


@dataclass(frozen=True)
class ParameterRow:
    tex: str
    plain: str
    meaning: str
    value: Number


@dataclass(frozen=True)
class LayerRow:
    """One non-input layer of the architecture."""

    index: int
    role: str                   # "hidden" or "output"
    units: int
    activation: str             # the contract name, e.g. "sigmoid"
    formula: str                # f(z) in LaTeX
    derivative: str             # f'(z) in LaTeX


@dataclass(frozen=True)
class Node:
    """A unit of the network diagram at (x, y) in layout units (one unit between layers)."""

    id: str
    tex: str
    plain: str
    kind: str                   # "input", "hidden", "output" or "bias"
    x: float
    y: float
    pieces: tuple[Piece, ...] = ()      # the name as SVG text runs (h, lowered 1)


@dataclass(frozen=True)
class Link:
    """An edge of the diagram with its parameter's name and initial value."""

    source: str
    target: str
    tex: str
    plain: str
    value: Number
    position: float             # where along the edge the label sits (0 at the source)
    pieces: tuple[Piece, ...] = ()      # the name as SVG text runs: w, raised (1), lowered 11
    shown: bool = True          # False for the edges of a shared bias after the first: one label says it


@dataclass(frozen=True)
class Page:
    """The diagram as the PDF prints it, laid out for the page's width: the SVG's layout, scaled down to it as a
    whole, would print a wide network's labels too small to read (layout.PAGE_PX)."""

    dx: float                   # pixels between two layers
    dy: float                   # pixels between two units of a layer
    positions: tuple[float | None, ...]     # each link's label along its edge, None where it has none
    labelled: str = "every"     # "every" edge, the edges into the "first" unit of each layer, or "none"


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    width: float
    height: float
    labelled: bool              # False when no layout keeps every label clear (the setup lists every weight)
    dx: float = DX              # pixels between two layers (layout.DY between two units)
    every: bool = True          # the printed layout may try a label on every edge (not where the layers are dense)

    def pixels(self, dx: float | None = None, dy: float = DY) -> dict[str, tuple[float, float]]:
        """Where each node sits in the SVG's pixels (y downwards), by its id, with the layers ``dx`` apart."""
        top = max(n.y for n in self.nodes)
        return {n.id: (MARGIN + n.x * (dx or self.dx), MARGIN + (top - n.y) * dy) for n in self.nodes}

    @cached_property
    def page(self) -> Page:
        """The printed layout, laid out when a template first asks for it: only LaTeX (and so the PDF) draws it,
        and its search was a tenth of a wide network's Markdown or HTML, which never show it.

        Every edge labelled where the page's width holds that at 7 pt (tried only where ``every``), else the edges
        into the first unit of each layer (a label for every weight would be too small to read), else none (the
        setup's table lists every weight)."""
        choices = (("every", lambda link: True), ("first", lambda link: link.target.endswith("_0")))
        for labelled, which in choices if self.every else choices[1:]:
            page = _page(self, [link for link in self.links if link.shown and which(link)])
            if page is not None:
                return replace(page, labelled=labelled)
        dx = min(self.dx, (PAGE_PX - 2 * RADIUS) / self.width)
        return Page(dx, PRINT_DY[0], (None,) * len(self.links), "none")


def _page(diagram: Diagram, labelled: Sequence[Link]) -> Page | None:
    """A printed layout with a label on each of ``labelled``: clear of every edge where the units' rows, PRINT_DY
    apart, allow it, else of the other labels, each on a white ground drawn over the edges it crosses; as short
    as it can be, the layers DX apart or more where the page is wide enough, then closer."""
    widths = [label_width(link.pieces, link.value.plain) for link in labelled]
    widest = int((PAGE_PX - 2 * RADIUS) / diagram.width)
    spans = [*range(DX, widest + 1, 20), *range(PRINT_DX, min(DX, widest + 1), 20)]
    for strict, dy, dx in ((strict, dy, dx) for strict in (True, False) for dy in PRINT_DY for dx in spans):
        where = diagram.pixels(dx, dy)
        drawn = [Segment(*where[link.source], *where[link.target]) for link in diagram.links]
        edges = [Segment(*where[link.source], *where[link.target]) for link in labelled]
        positions = place(edges, widths, list(where.values()), strict, drawn)
        if positions is not None:
            at = dict(zip(map(id, labelled), positions))
            return Page(dx, dy, tuple(at.get(id(link)) for link in diagram.links))
    return None


@dataclass(frozen=True)
class Setup:
    architecture: str           # prose
    layers: tuple[LayerRow, ...]
    loss_name: str
    loss_formula: str           # LaTeX: the loss of this network, general over samples
    loss_pieces: tuple[str, ...]    # the same formula in its parts (E = Σ eₙ; eₙ = …; N = 2; J = 1), for a narrow page
    loss_lines: tuple[Equation, ...]    # the same as aligned lines (E = Σ eₙ; eₙ = … = …; N = 2, J = 1)
    learning_rate: Number
    learning_rates: str         # LaTeX: η = 0.5, or one rate per layer η_{W^{(1)}} = 0.1, …
    steps: int                  # updates
    training: str               # prose with $math$: the updates, and which one this solution works
    bias: str                   # prose
    frozen: tuple[str, ...]     # LaTeX names of parameters that are not updated
    data_header: tuple[str, ...]
    data: tuple[tuple[Number, ...], ...]
    parameters: tuple[ParameterRow, ...]
    matrices: tuple[Equation, ...]
    diagram: Diagram


@dataclass(frozen=True)
class Shape:
    tex: str
    rows: int
    cols: int


@dataclass(frozen=True)
class Formula:
    """A general equation, what it says, and the shape of every matrix in it."""

    equation: Equation
    meaning: str                # prose
    shapes: tuple[Shape, ...] = ()


@dataclass(frozen=True)
class General:
    recursion_note: str
    recursion: tuple[Group, ...]        # per layer, output first: δ of each unit, then ∂E/∂p
    matrix_note: str
    matrix: tuple[Formula, ...]         # forward and backward pass of the batch as matrix equations
    any_depth_note: str
    any_depth: tuple[Formula, ...]      # the same recursion at any depth, in layer notation W^(l), δ^(l)


@dataclass(frozen=True)
class Comparison:
    tex: str
    plain: str
    sample: int                 # 1-based; 0 for the loss of the whole batch
    before: Number
    after: Number


@dataclass(frozen=True)
class After:
    parts: tuple[Part, ...]
    outputs: tuple[Comparison, ...]
    loss: Comparison


@dataclass(frozen=True)
class History:
    rows: tuple[tuple[int, Number], ...]
    points: tuple[tuple[int, float], ...]       # for plots, at most a few hundred
    note: str
    final: Number
    parameters: tuple[ParameterRow, ...] = ()  # every parameter after the last step
    outputs: tuple[Comparison, ...] = ()        # the outputs at those parameters, beside the initial ones


SECTIONS = ("setup", "notation", "forward", "loss", "backward", "general", "update", "after", "history",
            "updates", "verification")         # the template blocks, in the order the documents print them
# short: each δ derived once, one parameter per layer by its whole chain, the rest in a table, a row each from its δ;
# full: every parameter's chain in full, the layer-wise recursion, the forward pass with the new parameters
DETAILS = ("short", "full")


@dataclass(frozen=True)
class Outline:
    """Which sections a document shows (``--sections``), each numbered in order whatever is left out.

    The loss history is part of "after" (the forward pass with the new parameters); shown without
    it, it is a numbered section of its own.
    """

    shown: tuple[str, ...] = SECTIONS

    def shows(self, key: str) -> bool:
        return key in self.shown

    def number(self, key: str) -> int:
        """The section's number, or 0 where it is not shown or is part of another."""
        numbered = [k for k in self.shown if k != "history" or "after" not in self.shown]
        return numbered.index(key) + 1 if key in numbered else 0


@dataclass(frozen=True)
class View:
    """What a reader asked to see: some sections only (``--sections``), some parameters only (``--focus``),
    the careful author's length or every chain in full (``--detail``)."""

    sections: tuple[str, ...] = SECTIONS
    focus: tuple[str, ...] = ()         # plain names of parameters; empty: all of them
    detail: str = "short"               # one of DETAILS

    @property
    def full(self) -> bool:
        return self.detail == "full"


@dataclass(frozen=True)
class LaterUpdate:
    """An update after the first (online, mini-batches), worked from the parameters the one before it left."""

    number: int                         # 2, 3, …
    title: str
    tables: tuple[SampleTable, ...]     # its samples' z, a, δ and derivatives; the last column the batch's ∂E/∂p
    update: Group
    matrices: tuple[Equation, ...] = ()  # beyond SHORT_UPDATES parameters, the update in matrix form


@dataclass(frozen=True)
class Document:
    title: str                  # user text
    description: str            # user text
    generator: str
    precision: int | Rounding
    rounding: str
    setup: Setup
    notation: tuple[NameRow, ...]
    notation_general: tuple[NameRow, ...]
    forward: tuple[Part, ...]
    loss: Group
    backward: tuple[Part, ...]
    batch: Group | None         # ∂E/∂p as the sum over the samples
    general: General
    update: Group
    update_matrices: tuple[Equation, ...]
    widest: int                 # columns of the widest weight matrix, for the layout of matrix rows
    after: After
    history: History | None
    verification: Verification
    formulas: FormulaChecks     # how the general sections' formulas were checked
    samples: int
    outline: Outline = Outline()
    focus: tuple[str, ...] = ()     # LaTeX names of the parameters the backward pass and the update follow
    forward_table: tuple[SampleTable, ...] = ()     # short, with a batch: every sample's forward pass and loss
    backward_table: tuple[SampleTable, ...] = ()    # … and every sample's δ and derivatives
    later: tuple[LaterUpdate, ...] = ()             # online and in mini-batches, the next updates worked out
    later_note: str = ""
