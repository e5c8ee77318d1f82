"""The worked solution as data: sections, equations, tables and figures built from a Solution."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterable, Mapping, NamedTuple, Sequence

import sympy as sp
from sympy import Expr, Symbol

from derive.derived import formulas, general
from derive.derived.checked import FormulaChecks, FormulaError, check_formulas
from derive.derived.solution import Solution
from derive.derived.verification import Verification, verify
from derive.errors import RenderError
from derive.model.network import Network
from derive.model.spec import Optimizer, Spec
from derive.numeric.rounding import DEFAULT_PRECISION, Number, Rounding, number
from derive.numeric.values import Step, evaluate, exact, frozen
from derive.text.printer import tex, width
from derive.version import __version__

BREAK = "\x00"          # where a long sum may wrap onto a continuation line
TERMS_PER_LINE = 3      # terms of a sum on one line before it wraps
MAX_PATH_TERMS = 3      # a chain with a longer sum is written in the δ form instead
SHORT_UPDATES = 12      # more parameters than this: the short update writes one per layer group, then the matrices
SAMPLE_COLUMNS = 5      # samples side by side in one table of the short document
LINE = 64               # characters of a formula (printer.width) that fit on one line of the page


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
class Group:
    """A titled run of equations with an optional note before them."""

    title: str
    note: str
    equations: tuple[Equation, ...]


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


@dataclass(frozen=True)
class Link:
    """An edge of the diagram with its parameter's name and initial value."""

    source: str
    target: str
    tex: str
    plain: str
    value: Number
    position: float             # where along the edge the label sits (0 at the source)


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    width: float
    height: float
    labelled: bool              # False when there are too many edges to label legibly


@dataclass(frozen=True)
class Setup:
    architecture: str           # prose
    layers: tuple[LayerRow, ...]
    loss_name: str
    loss_formula: str           # LaTeX: the loss of this network, general over samples
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
            "verification")         # the template blocks, in the order the documents print them
# short: each δ derived once, one parameter per layer by its whole chain, the rest one line from their δ;
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


def _render(node: Chain, view: str, inner: bool = False) -> str:
    """One view of a chain: "partial" (∂ notation), "expr" (expressions) or "value" (numbers)."""
    if isinstance(node, Factor):
        if view == "partial":
            return node.partial
        if view == "expr":
            return rf"\left({node.expr}\right)" if inner and node.compound else node.expr
        return node.value.factor if inner else node.value.tex
    if isinstance(node, Product):
        joiner = " " if view == "partial" else r" \cdot "
        text = joiner.join(_render(p, view, True) for p in node.parts)
        if view == "partial" and node.label and BREAK not in text:
            return rf"\underbrace{{{text}}}_{{{node.label}}}"
        return text
    terms = [_render(t, view, True) for t in node.terms]
    lines = [" + ".join(terms[i:i + TERMS_PER_LINE]) for i in range(0, len(terms), TERMS_PER_LINE)]
    text = f" {BREAK}+ ".join(lines)
    if not inner:
        return text
    return rf"\Bigl({text}\Bigr)" if view == "partial" else rf"\bigl({text}\bigr)"


def _width(node: Chain) -> int:
    """The largest number of terms in any sum of the chain."""
    if isinstance(node, Factor):
        return 1
    if isinstance(node, Product):
        return max(_width(p) for p in node.parts)
    return max([len(node.terms)] + [_width(t) for t in node.terms])


def _only_argument(expr: Expr, s: Symbol) -> bool:
    """Whether s only appears as the one argument of a function: σ(−0.4) needs no (−0.4) bracket."""
    parents = [node for node in sp.preorder_traversal(expr) if s in node.args]
    return bool(parents) and all(isinstance(node, sp.Function) and len(node.args) == 1 for node in parents)


def _rows(views: Sequence[tuple[str, str]], value: Number, lhs: str = "") -> tuple[Row, ...]:
    """Rows from (relation, text) views, dropping repeats (of the lhs too), ending with the value.

    Long sums wrap onto continuation rows at their BREAK marks.
    """
    rows: list[Row] = []
    seen: set[str] = {lhs}
    for relation, text in views:
        if not text or text in seen or text == value.tex:
            continue
        seen.add(text)
        first, *rest = text.split(BREAK)
        rows.append(Row(relation, first.rstrip()))
        rows.extend(Row("", line.strip()) for line in rest)
    rows.append(Row(value.relation, value.tex))
    return tuple(rows)


# -- the builder ----------------------------------------------------------------------------

class _Builder:
    """Everything the document needs from one solution, at one precision."""

    def __init__(self, solution: "Solution", precision: int | Rounding, focus: Sequence[Symbol] = (),
                 full: bool = True):
        self.s, self.p, self.full = solution, precision, full
        self.focus = frozenset(focus) or frozenset(solution.network.parameters)
        self.net, self.d, self.tr = solution.network, solution.derivation, solution.training
        self.spec = solution.spec
        self.names = {sym: n.latex for sym, n in self.d.names.items()}
        self.N = self.spec.samples
        self.is_net = {z for layer in self.net.nets for z in layer}
        self._local_cache: dict[tuple[Symbol, Symbol, int], Number] = {}
        self._short: dict[Symbol, Expr | None] = {}
        self._scaled: dict[Symbol, Expr | None] = {}
        # carried rounding: the values rounding changed get ≈ (a sample's env dict is its key)
        self._rounded = {id(env): r for step in (self.tr.first, self.tr.after)
                         for env, r in zip(step.samples, step.rounded)}

    # numbers and formulas -------------------------------------------------------------------
    def num(self, value, inexact: bool = False) -> Number:
        return number(value, self.p, inexact=inexact)

    def value(self, env: Mapping[Symbol, Expr], s: Symbol) -> Number:
        """The value of s in one sample, marked rounded where carried rounding changed it."""
        return self.num(env[s], inexact=s in self._rounded.get(id(env), ()))

    def total(self, step: Step, key: tuple, value: Expr) -> Number:
        """A batch total (loss, gradient, updated parameter), marked rounded where carrying changed it."""
        return self.num(value, inexact=key in step.rounded_totals)

    def tex(self, expr: Expr, keep_order: bool = False) -> str:
        return tex(expr, self.names, keep_order=keep_order)

    def substituted(self, expr: Expr, env: Mapping[Symbol, Expr], keep_order: bool = False) -> tuple[str, bool]:
        """``expr`` with every symbol replaced by its shown value; whether all of them are exact."""
        shown = {s: self.num(env[s]) for s in expr.free_symbols}
        names = {s: (n.tex if expr == s or _only_argument(expr, s) else n.factor) for s, n in shown.items()}
        return tex(expr, names, numbers=True, keep_order=keep_order), all(n.exact for n in shown.values())

    def equation(self, lhs: str, formula: Expr | None, env: Mapping[Symbol, Expr], value: Number,
                 keep_order: bool = False) -> Equation:
        """lhs = formula = formula with numbers = value (repeats dropped)."""
        views = []
        if formula is not None:
            views.append(("=", self.tex(formula, keep_order)))
            text, exact_inputs = self.substituted(formula, env, keep_order)
            views.append(("=" if exact_inputs else r"\approx", text))
        return Equation(lhs, _rows(views, value, lhs))

    def loss_tex(self, n: int | None) -> str:
        """E with one sample; e_n for sample n of a batch; E for the batch total."""
        return "E" if self.N == 1 or n is None else f"e_{{{n}}}"

    def partial(self, top: str, v: Symbol) -> str:
        return rf"\frac{{\partial {top}}}{{\partial {self.names[v]}}}"

    def adjoint_tex(self, v: Symbol, n: int | None) -> str:
        """δ for a net input, ∂E/∂v (∂e_n/∂v in a batch) for anything else."""
        if v in self.is_net:
            return self.names[self.d.adjoint[v]]
        return self.partial(self.loss_tex(n), v)

    # display forms of the definitions --------------------------------------------------------
    def net_formula(self, l: int, j: int) -> Expr:
        """z = Σ_k w_jk a_k + b, in the network's order (weights by source unit, bias last)."""
        below = self.net.layer_input(l)
        with sp.evaluate(False):
            terms = [sp.Mul(w, a) for w, a in zip(self.net.weights[l][j], below)]
            terms += list(self.net.biases[l][j:j + 1])
            return sp.Add(*terms) if len(terms) > 1 else terms[0]

    def activation_formula(self, l: int, j: int) -> Expr:
        written = self.net.activation(l).written
        if written is not None:         # z itself for a linear unit, LReLU(z) rather than its two pieces
            return written(self.net.nets[l][j])
        return self.net.definitions[self.net.activations[l][j]]

    def loss_formula(self) -> tuple[Expr, Expr]:
        """One sample's loss as (scale, Σ_j term(o_j, y_j)), the sum kept in output order."""
        rule = self.spec.rule
        scale = rule.scale(self.N, self.spec.layers[-1])
        with sp.evaluate(False):
            terms = [rule.term(o, y) for o, y in zip(self.net.outputs, self.net.targets)]
            return scale, (sp.Add(*terms) if len(terms) > 1 else terms[0])

    def loss_definition_tex(self) -> str | None:
        """One sample's loss with the definition's constant in letters (1/(N J) for MSE), where it has any."""
        rule = self.spec.rule
        if not rule.scale(formulas.N, formulas.J).free_symbols:
            return None
        body = self.tex(self.loss_formula()[1], keep_order=True)
        return rf"{rule.scale_latex(self.N, self.spec.layers[-1])} \left({body}\right)" if self.loss_formula()[1].is_Add \
            else rf"{rule.scale_latex(self.N, self.spec.layers[-1])} {body}"

    def scaled_slope(self, o: Symbol) -> Expr | None:
        """∂e/∂o with the loss's N and J as letters (2(o − y)/(J N)), where its constant has them; checked
        to be the engine's ∂e/∂o once N and J are this spec's numbers. The same for every sample: once."""
        if o not in self._scaled:
            self._scaled[o] = self._scaled_slope(o)
        return self._scaled[o]

    def _scaled_slope(self, o: Symbol) -> Expr | None:
        scalar, o_, y_ = formulas.loss_slope(self.net)
        if not scalar.free_symbols & {formulas.N, formulas.J}:
            return None
        j = self.net.outputs.index(o)
        constant, rest = scalar.as_independent(o_, y_, as_Add=False)     # 2/(J N) in front, then (o − y)
        written = sp.Mul(constant, formulas.as_by_hand(rest, o_).xreplace({o_: o, y_: self.net.targets[j]}),
                         evaluate=False)
        numbers = {formulas.N: sp.Integer(self.N), formulas.J: sp.Integer(self.spec.layers[-1])}
        if sp.cancel(written.xreplace(numbers) - self.d.gradient[o]) != 0:      # rational in o and y
            raise AssertionError(f"∂e/∂o written with N and J is not the engine's: {written}")
        return written

    def loss_tex_formula(self, values: Mapping[Symbol, Expr] | None = None) -> tuple[str, bool]:
        """The loss formula in LaTeX, the constant in front: ½ (y − o)², or with numbers substituted."""
        scale, body = self.loss_formula()
        if values is None:
            text, exact_inputs = self.tex(body, keep_order=True), True
        else:
            text, exact_inputs = self.substituted(body, values, keep_order=True)
        if scale == 1:
            return text, exact_inputs
        if body.is_Add:
            text = rf"\left({text}\right)"
        front = "-" if scale == -1 else tex(scale)
        return f"{front} {text}", exact_inputs

    # chains -----------------------------------------------------------------------------------
    def local_value(self, child: Symbol, parent: Symbol, local: Expr, env: Mapping, n: int) -> Number:
        key = (child, parent, n)
        if key not in self._local_cache:
            self._local_cache[key] = self.num(exact(self.d.safe(local).xreplace(env)))
        return self._local_cache[key]

    def chain(self, v: Symbol, stops: set[Symbol], env: Mapping, n: int) -> Chain:
        """∂E/∂v as a tree of factors, expanded until a quantity in ``stops`` (or the loss)."""
        terms: list[Factor | Product] = []
        for e in self.d.edges[v]:
            factor = Factor(self.partial(self.names[e.child] if e.child != self.net.loss else self.loss_tex(n), v),
                            self.tex(e.local), self.local_value(e.child, v, e.local, env, n),
                            e.local.is_Add or e.local.could_extract_minus_sign())
            if e.child == self.net.loss:
                terms.append(factor)
            elif e.child in stops:
                reused = self.adjoint_tex(e.child, n)
                above = Factor(reused, reused, self.num(env[self.d.adjoint[e.child]]), False)
                terms.append(Product((above, factor), ""))
            else:
                upper = self.chain(e.child, stops, env, n)
                label = self.adjoint_tex(e.child, n) if e.child in self.is_net else ""
                if isinstance(upper, Product) and not label:
                    terms.append(Product(upper.parts + (factor,), ""))
                else:
                    terms.append(Product((Product((upper,), label) if label else upper, factor), ""))
        return terms[0] if len(terms) == 1 else Sum(tuple(terms))

    def chain_equation(self, v: Symbol, stops: set[Symbol], env: Mapping, n: int) -> Equation:
        tree = self.chain(v, stops, env, n)
        exact_inputs = "\\approx" if "\\approx" in str(self._relations(tree)) else "="
        views = [("=", _render(tree, "partial"))]
        scaled = self.scaled_slope(v) if v in self.net.outputs else None
        if scaled is not None:      # 2/(J N) (o − y) before o − y: where the mean's 1/N and the square's 2 go
            views.append(("=", self.tex(scaled, keep_order=True)))
        views.append(("=", _render(tree, "expr")))
        short = self.output_delta(v)
        if short is None:
            views.append((exact_inputs, _render(tree, "value")))
        else:               # the short form, and the numbers put into it, as a hand derivation goes on
            text, exact = self.substituted(short, env, keep_order=True)
            views += [("=", self.tex(short, keep_order=True)), ("=" if exact else r"\approx", text)]
        lhs = self.adjoint_tex(v, n)
        return Equation(lhs, _rows(views, self.value(env, self.d.adjoint[v]), lhs))

    def output_delta(self, v: Symbol) -> Expr | None:
        """An output unit's δ simplified, where that is much shorter: (o − y)/2 for a sigmoid under bce,
        where σ′ cancels against the derivative of the logarithm; o_j − y_j for a softmax under
        cross-entropy when the targets sum to 1."""
        if v not in self.net.nets[-1]:
            return None
        if v not in self._short:        # the same for every sample (the recursion section checks it)
            upstream = {self.d.adjoint[o]: self.d.gradient[o] for o in self.net.outputs}
            written = self.d.gradient[v].xreplace(upstream)
            short = formulas.unit_short_delta(self.net, self.net.nets[-1].index(v))
            self._short[v] = short if short is not None and sp.count_ops(short) + 3 < sp.count_ops(written) else None
            if self._short[v] is not None:      # printed in the backward pass: checked there at every sample
                for env in self.tr.first.samples:
                    self.check_line(v, self._short[v], env, "the short form of")
        return self._short[v]

    def _relations(self, node: Chain) -> set[str]:
        if isinstance(node, Factor):
            return {node.value.relation}
        items = node.parts if isinstance(node, Product) else node.terms
        return set().union(*(self._relations(i) for i in items))

    # sections ---------------------------------------------------------------------------------
    def layer_title(self, l: int) -> str:
        L = self.spec.depth
        if l == L - 1:
            return f"Output layer (layer {l + 1})"
        return f"Hidden layer {l + 1}" if L > 2 else "Hidden layer (layer 1)"

    def net_equation(self, l: int, j: int, env: Mapping) -> Equation:
        """z = Σ_k w_jk a_k + b: formula, numbers, value; a long sum wraps after every few terms."""
        formula = self.net_formula(l, j)
        terms = formula.args if formula.is_Add else (formula,)
        shown = [self.substituted(t, env, keep_order=True) for t in terms]
        # a negative bias after "+" is bracketed as in a product: + (−0.1), not + −0.1
        shown = [(rf"\left({t}\right)" if i and t.startswith("-") else t, e) for i, (t, e) in enumerate(shown)]
        exact_inputs = all(e for _, e in shown)

        def joined(texts: list[str]) -> str:
            if len(texts) <= TERMS_PER_LINE + 1:
                return " + ".join(texts)
            lines = [" + ".join(texts[i:i + TERMS_PER_LINE]) for i in range(0, len(texts), TERMS_PER_LINE)]
            return f" {BREAK}+ ".join(lines)

        views = [("=", joined([self.tex(t, keep_order=True) for t in terms])),
                 ("=" if exact_inputs else r"\approx", joined([t for t, _ in shown]))]
        lhs = self.names[self.net.nets[l][j]]
        return Equation(lhs, _rows(views, self.value(env, self.net.nets[l][j]), lhs))

    def forward_part(self, env: Mapping, n: int) -> Part:
        groups = []
        for l in range(self.spec.depth):
            units = range(len(self.net.nets[l]))
            nets = [self.net_equation(l, j, env) for j in units]
            acts = [self.equation(self.names[a], self.activation_formula(l, j), env, self.value(env, a))
                    for j, a in enumerate(self.net.activations[l])]
            # a softmax unit needs every net input of its layer: all z first, then the outputs
            eqs = nets + acts if not self.net.activation(l).elementwise else [e for pair in zip(nets, acts) for e in pair]
            groups.append(Group(self.layer_title(l), "", tuple(eqs)))
        return Part(n, self.sample_title(n), tuple(groups))

    def sample_title(self, n: int) -> str:
        if self.N == 1:
            return ""
        x = ", ".join(self.num(v).tex for v in self.spec.x[n - 1])
        y = ", ".join(self.num(v).tex for v in self.spec.y[n - 1])
        return f"Sample {n}: $x = ({x})$, target $({y})$" if len(self.spec.y[0]) > 1 else \
            f"Sample {n}: $x = ({x})$, target ${y}$"

    def loss_group(self) -> Group:
        step = self.tr.first
        eqs = []
        formula, definition = self.loss_tex_formula()[0], self.loss_definition_tex()
        for n, env in enumerate(step.samples if self.full else step.samples[:1], 1):    # short: the rest in a table
            numbers, exact_inputs = self.loss_tex_formula(env)
            views = [("=", definition or ""), ("=", formula), ("=" if exact_inputs else r"\approx", numbers)]
            eqs.append(Equation(self.loss_tex(n), _rows(views, self.value(env, self.net.loss))))
        note = ""
        if self.N > 1:
            parts = [self.value(env, self.net.loss) for env in step.samples]
            total = self.total(step, ("loss", None), step.loss)
            rows = [Row("=", rf"\sum_{{n=1}}^{{{self.N}}} e_{{n}}"),
                    Row("=" if all(p.exact for p in parts) else r"\approx", " + ".join(p.factor for p in parts)),
                    Row(total.relation, total.tex)]
            eqs.append(Equation("E", _split_sum(rows)))
            note = (f"With {self.N} samples the loss is the sum of the samples' contributions $e_n$; "
                    f"each $e_n$ carries the factor of the loss's definition.")
        if step.decay:
            eqs.append(self.objective_equation(step))
        return Group("Loss", note, tuple(eqs))

    def objective_equation(self, step: Step) -> Equation:
        """What weight decay minimises: E + λ/2 Σ w² over the decayed parameters, with its numbers."""
        lam = self.num(self.spec.optimizer.weight_decay)
        decayed = [p for p in self.net.parameters if p in (step.decay or {})]
        squares = self.num(sp.Add(*(step.parameters[p] ** 2 for p in decayed)))
        loss, total = self.total(step, ("loss", None), step.loss), self.num(step.objective)
        listed = " + ".join(f"{self.names[p]}^2" for p in decayed[:TERMS_PER_LINE])
        listed += r" + \dots" if len(decayed) > TERMS_PER_LINE else ""
        rows = (Row("=", rf"E + \frac{{\lambda}}{{2}} \left({listed}\right)"),
                Row("=" if loss.exact and squares.exact else r"\approx",
                    rf"{loss.factor} + \frac{{{lam.tex}}}{{2}} \cdot {squares.factor}"),
                Row(total.relation, total.tex))
        return Equation(r"E + \frac{\lambda}{2} \sum w^2", rows)

    def backward_part(self, env: Mapping, n: int) -> Part:
        net, L = self.net, self.spec.depth
        groups = []
        for l in reversed(range(L)):
            eqs = []
            if l == L - 1:
                stops: set[Symbol] = set()
                eqs += [self.chain_equation(o, stops, env, n) for o in net.outputs]
                note = (f"Start at the loss: differentiate ${self.loss_tex(n)}$ with respect to each output, "
                        f"then follow each parameter's chain of partial derivatives.")
                if not net.activation(l).elementwise and self.output_delta(net.nets[l][0]) is not None:
                    note += (" The targets of every sample sum to 1, so each softmax unit's sum of paths "
                             "collapses to its output minus its target" + (" over N." if self.N > 1 else "."))
            else:
                stops = set(net.nets[l + 1])
                deltas = ", ".join(f"${self.names[self.d.adjoint[z]]} "
                                   f"{self.value(env, self.d.adjoint[z]).relation} {self.value(env, self.d.adjoint[z]).tex}$"
                                   for z in net.nets[l + 1])
                note = (f"The chains of this layer pass through layer {l + 2}, whose $\\delta$ were computed "
                        f"above and are reused here, not derived again: {deltas}. "
                        f"A unit that feeds several units of layer {l + 2} collects one term per path: "
                        f"its chain contains a sum over those paths.")
            eqs += [self.chain_equation(z, stops, env, n) for z in net.nets[l] if z in self.needed]
            if not eqs:
                continue                # below every parameter that --focus follows
            if self.focused and l == L - 1:
                note += (f" Only what the gradient of ${', '.join(self.names[p] for p in self.focus_order)}$ needs "
                         f"is shown: the $\\delta$ of its unit and of every unit above.")
            parameters = self.layer_parameters(l)
            in_full = parameters if self.full else parameters[:1]
            narrow = True
            for p in in_full:
                fits = _width(self.chain(p, stops, env, n)) <= MAX_PATH_TERMS
                narrow = narrow and fits
                eqs.append(self.chain_equation(p, stops if fits else set(net.nets[l]), env, n))
            if self.N == 1 or self.full:     # short with a batch: the table after the pass holds them
                eqs += [self.gradient_line(p, env, n) for p in parameters[len(in_full):]]
            note += self.parameters_note(l, parameters, narrow)
            groups.append(Group(self.layer_title(l), note, tuple(eqs)))
        return Part(n, self.sample_title(n), tuple(groups))

    def parameters_note(self, l: int, parameters: Sequence[Symbol], narrow: bool) -> str:
        note = ""
        if not narrow:
            note += (f" Where a chain would contain a sum of more than {MAX_PATH_TERMS} paths, the "
                     f"parameter's line starts from the $\\delta$ of its own unit, computed just above "
                     f"(the sum is written out once, in that $\\delta$).")
        if not self.full and len(parameters) > 1:
            first = self.names[parameters[0]]
            note += (f" The chain of ${first}$ is written out in full; every other parameter of layer {l + 1} "
                     f"ends in the same $\\delta$, so its derivative is that $\\delta$ times what the parameter "
                     f"multiplies (1 for a bias)" + (": the table after this pass lists them for every sample."
                                                     if self.N > 1 else "."))
        return note

    def gradient_line(self, p: Symbol, env: Mapping, n: int) -> Equation:
        """∂E/∂p in one line from the δ above: δ_j a_k (δ_j for a bias, Σ_j δ_j for a shared one), with its numbers.

        The rule is the sum over the derivation's edges from p, δ of the child times its local derivative; it is
        checked against the chain rule's value before it is printed."""
        # δ before what it multiplies, as the chain reads (SymPy's own order would put a before δ)
        terms = [sp.Mul(self.d.adjoint[e.child], e.local, evaluate=False) if e.local != 1 else self.d.adjoint[e.child]
                 for e in self.d.edges[p]]
        rule = sp.Add(*terms, evaluate=False) if len(terms) > 1 else terms[0]
        self.check_line(p, rule, env)
        numbers, exact_inputs = self.substituted(rule, env, keep_order=True)
        lhs = self.adjoint_tex(p, n)
        views = [("=", self.tex(rule, keep_order=True)), ("=" if exact_inputs else r"\approx", numbers)]
        return Equation(lhs, _rows(views, self.value(env, self.d.adjoint[p]), lhs))

    def check_line(self, v: Symbol, rule: Expr, env: Mapping, what: str = "the line for") -> None:
        """A formula for ∂E/∂v that the document prints gives the chain rule's value (to the carried rounding's
        last digit where values are rounded as they go), or the document is not written."""
        ours, engine = exact(rule.xreplace(env)), exact(env[self.d.adjoint[v]])
        digits = self.s.carry.n - 1 if self.s.carry is not None else 25
        if abs(ours - engine) > max(abs(ours), abs(engine), sp.Integer(1)) / sp.Integer(10) ** digits:
            raise FormulaError(f"internal error: {what} {self.d.names[v].plain} gives {sp.N(ours, 12)} where "
                               f"the chain rule gives {sp.N(engine, 12)}; the document is not written")

    def layer_parameters(self, l: int) -> list[Symbol]:
        """Layer l's weights and biases that the document follows (every one, or those of --focus)."""
        ws = [w for row in self.net.weights[l] for w in row]
        return [p for p in ws + list(dict.fromkeys(self.net.biases[l])) if p in self.focus]

    @property
    def focused(self) -> bool:
        return len(self.focus) < len(self.net.parameters)

    @cached_property
    def needed(self) -> frozenset[Symbol]:
        """The net inputs whose δ the followed parameters' gradients need: their own units' and every one above."""
        net = self.net
        units: dict[Symbol, tuple[int, set[Symbol]]] = {}
        for l, layer in enumerate(net.weights):
            units.update((w, (l, {net.nets[l][j]})) for j, row in enumerate(layer) for w in row)
            for j, b in enumerate(net.biases[l]):
                units.setdefault(b, (l, set()))[1].add(net.nets[l][j])     # a shared bias feeds every unit
        lowest = min(units[p][0] for p in self.focus)
        out = {z for l in range(lowest + 1, self.spec.depth) for z in net.nets[l]}
        return frozenset(out.union(*(units[p][1] for p in self.focus)))

    @property
    def focus_order(self) -> list[Symbol]:
        return [p for p in self.net.parameters if p in self.focus]

    # a batch's samples in tables ----------------------------------------------------------------
    def forward_table(self) -> tuple[SampleTable, ...]:
        if self.N == 1:
            return ()
        net = self.net
        quantities = [v for l in range(self.spec.depth) for v in net.nets[l] + net.activations[l]]
        note = (f"Sample 1 is worked out above; each of the {self.N} samples goes through the same steps with its "
                f"own $x$ and $y$. Every sample's values, sample 1 again in the first column:")
        return self.sample_tables("Every sample", note, [(self.names[v], v) for v in quantities])

    def backward_table(self) -> tuple[SampleTable, ...]:
        if self.N == 1:
            return ()
        net, d = self.net, self.d
        slopes = [(self.partial("e_{n}", o), o) for o in net.outputs]
        deltas = [(self.adjoint_tex(z, None), z) for l in reversed(range(self.spec.depth)) for z in net.nets[l]
                  if z in self.needed]
        grads = [(self.partial("e_{n}", p), p) for p in self.focus_order]
        note = ("Sample 1's derivatives are worked out above; every sample's, and in the last column the batch's "
                "$\\partial E/\\partial p$, their sum:")
        tables = self.sample_tables("Every sample", note, [(tex, d.adjoint[v]) for tex, v in slopes + deltas + grads])
        step = self.tr.first
        sums = {self.partial("e_{n}", p): self.total(step, ("gradient", p), step.gradient[p]) for p in self.focus_order}
        last = tables[-1]
        rows = tuple(replace(r, total=sums.get(r.tex)) for r in last.rows)
        return tables[:-1] + (replace(last, rows=rows, total=r"\frac{\partial E}{\partial p}"),)

    def sample_tables(self, title: str, note: str, quantities: Sequence[tuple[str, Symbol]]) -> tuple[SampleTable, ...]:
        """Tables of SAMPLE_COLUMNS samples each, the values of one step's samples."""
        samples = self.tr.first.samples
        out = []
        for start in range(0, self.N, SAMPLE_COLUMNS):
            columns = range(start, min(start + SAMPLE_COLUMNS, self.N))
            rows = tuple(ValueRow(tex_, tuple(self.value(samples[n], v) for n in columns)) for tex_, v in quantities)
            out.append(SampleTable(title if not start else "", note if not start else "",
                                   tuple(n + 1 for n in columns), rows))
        return tuple(out)

    def batch_group(self) -> Group | None:
        if self.N == 1:
            return None
        step = self.tr.first
        eqs = []
        for p in self.focus_order if self.full else self.focus_order[:1]:
            parts = [self.value(env, self.d.adjoint[p]) for env in step.samples]
            total = self.total(step, ("gradient", p), step.gradient[p])
            rows = [Row("=", rf"\sum_{{n=1}}^{{{self.N}}} " + self.partial("e_{n}", p)),
                    Row("=" if all(q.exact for q in parts) else r"\approx", " + ".join(q.factor for q in parts)),
                    Row(total.relation, total.tex)]
            eqs.append(Equation(self.partial("E", p), _split_sum(rows)))
        note = (f"$E$ is the sum of the {self.N} samples' contributions, so each derivative of $E$ "
                f"is the sum of the samples' derivatives computed above.")
        if not self.full and len(self.focus_order) > 1:
            note += " The table's last column holds each sum; the first, written out:"
        return Group("The gradient of the whole batch", note, tuple(eqs))

    def update_group(self) -> Group:
        step = self.tr.first
        fixed = frozen(self.d)
        eqs = []
        for p in self.updates_shown:
            name = self.names[p]
            if p in fixed:
                value = self.num(step.parameters[p])
                eqs.append(Equation(name, (Row(r"\leftarrow", rf"{name} \quad \text{{(frozen)}}"),
                                           Row(value.relation, value.tex))))
                continue
            eqs.append(Equation(name, self.update_rows(step, p)))
        scaled = (f"its layer's learning rate (${self.rates_tex()}$)" if self.per_layer
                  else f"the learning rate ${self.rates_tex()}$")
        note = (f"Gradient descent moves every parameter against its derivative, scaled by {scaled}: "
                f"$p \\leftarrow p - \\eta\\, \\partial E / \\partial p$. "
                + ("The new values are computed from the derivatives as shown (rounded)." if self.s.carry is not None
                   else "The new values are computed from the unrounded derivatives."))
        if fixed:
            note += " Frozen parameters keep their values."
        if len(self.updates_shown) < len(self.focus_order):
            note += (" One parameter of each layer's weights and biases is written out; the matrix form below "
                     "updates every one.")
        return Group("Update", note + self.decay_note() + self.momentum_note(), tuple(eqs))

    @property
    def updates_shown(self) -> list[Symbol]:
        """Every followed parameter; short with more than SHORT_UPDATES of them (and the matrix form below), the
        first of each layer's weights and of its biases."""
        if self.full or len(self.focus_order) <= SHORT_UPDATES or self.focused:
            return self.focus_order
        firsts = {self.groups[p]: p for p in reversed(self.focus_order)}
        return [p for p in self.focus_order if firsts[self.groups[p]] == p]

    @cached_property
    def groups(self) -> dict[Symbol, str]:
        """Each parameter's layer group, "W1" or "b2": what [train].learning_rate may give a rate of its own."""
        out = {w: f"W{l + 1}" for l, layer in enumerate(self.net.weights) for row in layer for w in row}
        out.update((b, f"b{l + 1}") for l, layer in enumerate(self.net.biases) for b in layer)
        return out

    @property
    def per_layer(self) -> bool:
        return self.spec.optimizer.per_layer

    def eta(self, group: str) -> str:
        """η, or with a rate per layer η_{W^{(1)}}, η_{b^{(2)}}."""
        return rf"\eta_{{{group[0]}^{{({group[1:]})}}}}" if self.per_layer else r"\eta"

    def rates_tex(self) -> str:
        if not self.per_layer:
            return rf"\eta = {self.num(self.spec.learning_rate).tex}"
        return r",\ ".join(f"{self.eta(g)} = {self.num(self.spec.optimizer.rate(g)).tex}" for g in self.spec.groups)

    def update_rows(self, step: Step, p: Symbol) -> tuple[Row, ...]:
        """p ← p − η ∂E/∂p with its numbers; with weight decay on p, p ← p − η (∂E/∂p + λ p)."""
        group = self.groups[p]
        eta, rate = self.eta(group), self.num(self.spec.optimizer.rate(group))
        name, grad = self.names[p], self.partial("E", p)
        old, g = self.num(step.parameters[p]), self.total(step, ("gradient", p), step.gradient[p])
        new = self.total(step, ("updated", p), step.updated[p])
        decay = (step.decay or {}).get(p)
        rel = "=" if old.exact and g.exact else r"\approx"
        # with momentum the first update is p + v with v = μ·0 − η ∂E/∂p: written so that the velocity shows
        moved = rf"{name} + v_{{{name}}} = " if self.spec.optimizer.momentum else ""
        if decay is None:
            return (Row(r"\leftarrow", rf"{moved}{name} - {eta}\, {grad}"),
                    Row(rel, rf"{old.tex} - {rate.tex} \cdot {g.factor}"), Row(new.relation, new.tex))
        lam = self.num(self.spec.optimizer.weight_decay)
        return (Row(r"\leftarrow", rf"{moved}{name} - {eta} \left({grad} + \lambda\, {name}\right)"),
                Row(rel, rf"{old.tex} - {rate.tex} \cdot \left({g.tex} + {lam.tex} \cdot {old.factor}\right)"),
                Row(new.relation, new.tex))

    def decay_note(self) -> str:
        optimizer = self.spec.optimizer
        if not optimizer.weight_decay:
            return ""
        lam = self.num(optimizer.weight_decay).tex
        which = "weight and bias" if optimizer.decay_biases else "weight (not the biases)"
        return (f" With weight decay $\\lambda = {lam}$ the descent minimises $E + \\frac{{\\lambda}}{{2}} "
                f"\\sum w^2$, so each {which} also moves by $\\eta \\lambda$ times its own value toward 0: "
                f"$w \\leftarrow w - \\eta \\left(\\partial E / \\partial w + \\lambda w\\right)$.")

    def momentum_note(self) -> str:
        momentum = self.spec.optimizer.momentum
        if not momentum:
            return ""
        mu = self.num(momentum).tex
        return (f" With momentum $\\mu = {mu}$ each update is $v \\leftarrow \\mu v - \\eta\\, \\partial E / "
                f"\\partial p$, $p \\leftarrow p + v$; the velocity $v$ starts at 0, so this first update is "
                f"the plain step ($v_p = -\\eta\\, \\partial E / \\partial p$), and each later one adds ${mu}$ "
                f"times the velocity before.")

    # matrices -----------------------------------------------------------------------------------
    def weight_matrix(self, l: int) -> sp.Matrix:
        W = sp.Matrix(self.net.weights[l])
        return W.T if self.spec.convention == "row" else W

    def matrix_tex(self, M: sp.Matrix, values: Mapping[Symbol, Expr] | None = None) -> tuple[str, bool]:
        if values is None:
            return self.tex(M), True
        shown = {s: self.num(values[s]) for s in M.free_symbols}
        return tex(M, {s: v.tex for s, v in shown.items()}), all(v.exact for v in shown.values())

    def matrix_name(self, l: int, kind: str) -> str:
        return "W" if kind == "W" else "b"

    def setup_matrices(self) -> tuple[Equation, ...]:
        step = self.tr.first
        eqs = []
        for l in range(self.spec.depth):
            W = self.weight_matrix(l)
            symbolic, _ = self.matrix_tex(W)
            numeric, exact_all = self.matrix_tex(W, step.parameters)
            eqs.append(Equation(f"W^{{({l + 1})}}", (Row("=", symbolic), Row("=" if exact_all else r"\approx", numeric))))
            if self.spec.bias.of(l) == "neuron":
                b = sp.Matrix(self.net.biases[l])
                b = b.T if self.spec.convention == "row" else b
                eqs.append(Equation(f"b^{{({l + 1})}}", (Row("=", self.matrix_tex(b)[0]),
                                                         Row("=", self.matrix_tex(b, step.parameters)[0]))))
        return tuple(eqs)

    def update_matrices(self) -> tuple[Equation, ...]:
        if self.focused:        # the followed parameters' own updates say it all
            return ()
        step = self.tr.first
        fixed = frozen(self.d)
        eqs = []
        blocks = []
        for l in range(self.spec.depth):
            blocks.append((f"W^{{({l + 1})}}", self.weight_matrix(l)))
            if self.spec.bias.of(l) == "neuron":
                b = sp.Matrix(self.net.biases[l])
                blocks.append((f"b^{{({l + 1})}}", b.T if self.spec.convention == "row" else b))
        for name, M in blocks:
            if all(p in fixed for p in M):
                continue
            group = self.groups[next(iter(M))]
            eta, rate = self.eta(group), self.num(self.spec.optimizer.rate(group))
            old, old_exact = self.matrix_tex(M, step.parameters)
            decayed = any(p in (step.decay or {}) for p in M)
            # with weight decay the matrix subtracted is ∂E/∂W + λW, entry by entry (a bias without decay: + 0)
            grad, grad_exact = self.matrix_tex(M, step.objective_gradient if decayed else step.gradient)
            new, new_exact = self.matrix_tex(M, step.updated)
            rule = (rf"{name} - {eta} \left(\frac{{\partial E}}{{\partial {name}}} + \lambda {name}\right)" if decayed
                    else rf"{name} - {eta}\, \frac{{\partial E}}{{\partial {name}}}")
            eqs.append(Equation(name, (
                Row(r"\leftarrow", rule),
                Row("=" if old_exact and grad_exact else r"\approx", old),
                Row("", rf"- {rate.tex} {grad}"),
                Row("=" if new_exact else r"\approx", new))))
        return tuple(eqs)



# -- setup, notation, figures ----------------------------------------------------------------

def _architecture(layers: Sequence[int]) -> str:
    hidden = layers[1:-1]
    outs = f"{layers[-1]} output unit{'s' if layers[-1] > 1 else ''}"
    ins = f"{layers[0]} input{'s' if layers[0] > 1 else ''}"
    shape = "-".join(map(str, layers))
    if not hidden:
        return f"{shape}: {ins} connected directly to {outs}"
    if len(hidden) == 1:
        return f"{shape}: {ins}, one hidden layer of {hidden[0]} unit{'s' if hidden[0] > 1 else ''}, {outs}"
    sizes = ", ".join(map(str, hidden[:-1])) + f" and {hidden[-1]}"
    return f"{shape}: {ins}, {len(hidden)} hidden layers of {sizes} units, {outs}"


_BIAS = {"none": "no biases", "neuron": "one bias per unit",
         "shared": "one bias per layer, shared by all its units"}


def _bias_text(spec: Spec) -> str:
    """The biases in words: one kind for every layer, or layer by layer."""
    if spec.bias.uniform is not None:
        return _BIAS[spec.bias.uniform]
    return "; ".join(f"layer {l + 1}: {_BIAS[k]}" for l, k in enumerate(spec.bias.kinds))


def _layer_rows(b: _Builder) -> tuple[LayerRow, ...]:
    z, a = sp.Symbol("z"), sp.Symbol("a")
    rows = []
    for l, name in enumerate(b.spec.activations):
        act = b.net.activation(l)
        if not act.elementwise:
            zi, K = sp.Symbol("z_i"), b.spec.layers[l + 1]
            j = sp.Symbol("j", integer=True)
            formula = tex(sp.Eq(sp.Symbol("a_i"), sp.exp(zi) / sp.Sum(sp.exp(sp.Indexed("z", j)), (j, 1, K))))
            derivative = rf"\frac{{\partial a_i}}{{\partial z_j}} = {act.df_latex}"
        else:
            shown = act.f(z)
            rewritten = shown.rewrite(sp.exp) if act.exp_form else shown
            formula = "f(z) = " + tex(shown) + ("" if rewritten == shown else " = " + tex(rewritten))
            in_a = tex(act.df(z, a))
            derivative = "f'(z) = " + (in_a if in_a == act.df_latex else f"{act.df_latex}")
            if act.df_in_a:
                derivative += f" = {in_a}"
        role = "output" if l == b.spec.depth - 1 else "hidden"
        rows.append(LayerRow(l + 1, role, b.spec.layers[l + 1], name, formula, derivative))
    return tuple(rows)


def _diagram(b: _Builder) -> Diagram:
    spec, net = b.spec, b.net
    first = b.tr.first.parameters
    layers = spec.layers
    top = (max(layers) - 1) / 2
    nodes, links = [], []
    for l, n in enumerate(layers):
        units = net.inputs if l == 0 else net.activations[l - 1]
        kind = "input" if l == 0 else "output" if l == spec.depth else "hidden"
        for j, u in enumerate(units):
            nodes.append(Node(f"n{l}_{j}", b.names[u], b.d.names[u].plain, kind, float(l), (n - 1) / 2 - j))
    for l in range(spec.depth):
        if spec.bias.of(l) != "none":
            nodes.append(Node(f"bias{l}", "1", "1", "bias", l + 0.35, top + 1.0))
    for l in range(spec.depth):
        for j, row in enumerate(net.weights[l]):
            for k, w in enumerate(row):
                position = 0.25      # near the source, where edges to different targets fan out
                links.append(Link(f"n{l}_{k}", f"n{l + 1}_{j}", b.names[w], b.d.names[w].plain,
                                  b.num(first[w]), round(position, 3)))
        for j, bias in enumerate(net.biases[l]):
            links.append(Link(f"bias{l}", f"n{l + 1}_{j}", b.names[bias], b.d.names[bias].plain,
                              b.num(first[bias]), 0.5))
    height = top * 2 + (1.0 if spec.bias.any else 0.0)
    return Diagram(tuple(nodes), tuple(links), float(spec.depth), height, len(links) <= 48)


def _setup(b: _Builder) -> Setup:
    """The network, the whole data and how it is trained."""
    spec, net, first = b.spec, b.net, b.tr.first
    fixed = frozen(b.d)
    loss, definition = b.loss_tex_formula()[0], b.loss_definition_tex()
    if definition is not None:      # where the 1/N and the 1/J go: e_n = 1/(N J) (y − o)² = ½ (y − o)²
        loss = rf"{definition} = {loss}, \quad N = {b.N},\ J = {spec.layers[-1]}"
    if b.N == 1:
        loss_tex = "E = " + loss
    else:
        loss_tex = rf"E = \sum_{{n=1}}^{{{b.N}}} e_{{n}}, \qquad e_{{n}} = {loss}"
    header = tuple(b.names[s] for s in net.inputs + net.targets)
    data = tuple(tuple(b.num(v) for v in x + y) for x, y in zip(spec.x, spec.y))
    params = tuple(ParameterRow(b.names[p], b.d.names[p].plain, b.d.names[p].meaning, b.num(first.parameters[p]))
                   for p in net.parameters)
    loss_name = spec.loss if spec.reduction == "mean" else f"{spec.loss}, reduction = sum"
    return Setup(_architecture(spec.layers), _layer_rows(b), loss_name, loss_tex, b.num(spec.learning_rate),
                 b.rates_tex(), spec.steps, _training(b), _bias_text(spec), tuple(b.names[p] for p in net.parameters if p in fixed),
                 header, data, params, b.setup_matrices(), _diagram(b))


def _step_loss(b: _Builder, whole: _Builder) -> Group:
    """The loss the first step follows: the whole data's, or online and in mini-batches its own samples'."""
    group = b.loss_group()
    if b is whole:
        return group
    own = _samples(whole.tr.first.batch)
    total = whole.num(whole.tr.first.loss)
    note = (f"The first step follows the loss of {own} of the data alone, shown here; over the whole data, "
            f"before any step, $E {total.relation} {total.tex}$.")
    return replace(group, note=f"{group.note} {note}".strip())


def _samples(rows: Sequence[int]) -> str:
    """"sample 3", "samples 3 and 1": data rows (0-based) as the data table numbers them."""
    return f"sample{'s' if len(rows) > 1 else ''} {_listing(n + 1 for n in rows)}"


def _listing(items: Iterable[object]) -> str:
    """"1", "1 and 2", "1, 2 and 3"."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _training(b: _Builder) -> str:
    """How the parameters are updated, in words: full batch, online or in mini-batches, with momentum."""
    optimizer, steps = b.spec.optimizer, b.spec.steps
    text = f"{steps} step{'s' if steps > 1 else ''} of gradient descent"
    if optimizer.momentum:
        text += f" with momentum $\\mu = {b.num(optimizer.momentum).tex}$,"
    if optimizer.weight_decay:
        which = "weights and biases" if optimizer.decay_biases else "weights"
        text += f" with weight decay $\\lambda = {b.num(optimizer.weight_decay).tex}$ on the {which},"
    return text + (_batches(optimizer) if optimizer.stochastic else " on the whole batch")


def _batches(optimizer: Optimizer) -> str:
    """Which samples each step takes, and which of them the worked first step is on."""
    first = next(optimizer.order())
    kind = "one sample per step (online)" if optimizer.batch == 1 else f"mini-batches of {optimizer.batch} samples"
    order = "in an order drawn afresh for each pass over the data" if optimizer.shuffle else "in the order of the data"
    text = (f" on {kind}, {order}; each step follows the gradient of the loss of its own samples alone. "
            f"The first step is worked below, on {_samples(first)} of the data")
    if first != tuple(range(len(first))):
        text += f" (numbered {_listing(range(1, len(first) + 1))} there)"
    return text + "; the loss history is of the whole data"


def _notation(b: _Builder, brief: bool) -> tuple[NameRow, ...]:
    """Every symbol with its plain name; ``brief``: the parameters, which the setup lists, left out and their
    derivatives as one row that says how their names are made."""
    net, d = b.net, b.d
    rows: list[NameRow] = []

    def add(sym: Symbol) -> None:
        n = d.names[sym]
        rows.append(NameRow(n.latex, n.plain, n.meaning))

    for s in net.inputs + net.targets + (() if brief else net.parameters):
        add(s)
    for l in range(len(net.nets)):
        for s in net.nets[l] + net.activations[l]:
            add(s)
    rows += _loss_names(b)
    for v in _reading_order(net, d.backward_order):
        if not (brief and v in net.parameters):
            add(d.adjoint[v])
    if brief:
        rows += _gradient_names(b)
    elif b.N > 1:
        for p in net.parameters:
            rows.append(NameRow(b.partial("E", p), f"dE/d{d.names[p].plain}",
                                f"derivative of the batch loss E with respect to {d.names[p].plain}"))
    rows.append(NameRow(r"\eta", "learning_rate", "learning rate of gradient descent"))
    p0 = d.names[net.parameters[0]].plain
    rows.append(NameRow(rf"{b.names[net.parameters[0]]} \leftarrow \dots", f"{p0}'",
                        f"a parameter after the update: its name followed by ' (so {p0}' is {p0} after one step)"))
    return tuple(rows)


def _loss_names(b: _Builder) -> tuple[NameRow, ...]:
    if b.N == 1:
        n = b.d.names[b.net.loss]
        return (NameRow(n.latex, n.plain, n.meaning),)
    return (NameRow("E", "E", f"loss of the whole batch, the sum of the {b.N} samples' e_n"),
            NameRow("e_{n}", "e", "loss contribution of sample n"))


def _reading_order(net: Network, quantities: Iterable[Symbol]) -> list[Symbol]:
    """A layer's activations then its net inputs, unit 1 first, from the output down; then the parameters."""
    natural = [v for l in reversed(range(len(net.nets))) for v in net.activations[l] + net.nets[l]]
    rank = {v: i for i, v in enumerate(natural + list(net.parameters))}
    return sorted(quantities, key=lambda v: rank.get(v, -1))


def _gradient_names(b: _Builder) -> tuple[NameRow, ...]:
    """A row for the derivatives of the loss by every parameter (dE/d and the parameter's name), and with a
    batch one for each sample's (de/d and the name, [n] for sample n)."""
    first = b.net.parameters[0]
    plain = b.d.names[first].plain
    if b.N == 1:
        return (NameRow(rf"{b.partial('E', first)}, \dots", f"dE/d{plain}, …",
                        "derivative of the loss with respect to a parameter: dE/d followed by its name"),)
    return (NameRow(rf"{b.partial('e', first)}, \dots", f"de/d{plain}, …",
                    "derivative of one sample's loss with respect to a parameter: de/d followed by its name "
                    f"(de/d{plain}[2] for sample 2)"),
            NameRow(rf"{b.partial('E', first)}, \dots", f"dE/d{plain}, …",
                    "derivative of the batch loss E with respect to a parameter: dE/d followed by its name"))


def _history(b: _Builder) -> History | None:
    steps = b.spec.steps
    if steps == 1:
        return None
    history = b.tr.history
    exact_values = {0: b.tr.first.objective, 1: b.tr.after.objective}

    def shown(i: int) -> Number:
        return b.num(exact_values[i]) if i in exact_values else b.num(history[i], inexact=True)

    if steps <= 20:
        picked = list(range(steps + 1))
    else:
        picked = sorted({round(i * steps / 20) for i in range(21)})
    stride = max(1, -(-steps // 400))
    points = tuple((i, history[i]) for i in sorted(set(range(0, steps + 1, stride)) | {steps}))
    note = (f"The loss before the first step (step 0) and after each of the {steps} steps. From step 2 on, "
            f"the steps run in double precision, so their losses are shown rounded.")
    if len(picked) < steps + 1:
        note += f" The table shows {len(picked)} of the {steps + 1} values, evenly spaced."
    if b.spec.optimizer.weight_decay:
        note += r" With weight decay each is what the descent minimises, $E + \frac{\lambda}{2} \sum w^2$."
    if b.spec.optimizer.stochastic:
        note += (" Each is the loss over the whole data, while each step follows the loss of its own samples, "
                 "so it need not fall at every step.")
    parameters, outputs = _final_state(b)
    return History(tuple((i, shown(i)) for i in picked), points, note, shown(steps), parameters, outputs)


def _final_state(b: _Builder) -> tuple[tuple[ParameterRow, ...], tuple[Comparison, ...]]:
    """The parameters after the last step (the tape's doubles) and the outputs they give, sample by sample."""
    final = b.tr.final
    rows = tuple(ParameterRow(b.names[p], b.d.names[p].plain, b.d.names[p].meaning, b.num(final[p], inexact=True))
                 for p in b.net.parameters)
    # the forward pass at those doubles, exactly: the outputs a reader gets from the parameters shown unrounded
    last = evaluate(b.d, {p: sp.Rational(final[p]) for p in b.net.parameters})
    outputs = tuple(Comparison(b.names[o], b.d.names[o].plain, n, b.num(env0[o]), b.num(env[o], inexact=True))
                    for n, (env0, env) in enumerate(zip(b.tr.first.samples, last.samples), 1) for o in b.net.outputs)
    return rows, outputs



# -- general formulas ---------------------------------------------------------------------------

def _shapes(eq, names: Mapping) -> tuple[Shape, ...]:
    return tuple(Shape(tex(f.matrix, names), f.rows, f.cols) for f in eq.factors)


@dataclass(frozen=True, eq=False)
class _Sections:
    """The formulas of the general sections, checked at this network's numbers before any is printed."""

    recursion: tuple[formulas.LayerRecursion, ...]
    matrix: formulas.MatrixForm
    general: tuple[general.GeneralEquation, ...]
    checks: FormulaChecks


def _checked_sections(solution: Solution, full: bool) -> _Sections:
    """The general formulas this document prints, each checked first (short: those for any depth only)."""
    recursion = formulas.layer_recursion(solution.derivation)
    form = formulas.matrix_form(solution.network)
    equations = general.general_equations(solution.network)
    checks = check_formulas(solution, recursion if full else (), form if full else None, equations)
    return _Sections(recursion, form, equations, checks)


def _general(b: _Builder, sections: _Sections) -> General:
    spec = b.spec
    one = "one sample" if b.N == 1 else "one sample (the batch sums them)"
    groups = []
    for layer in sections.recursion if b.full else ():     # short: the backward pass above is this recursion in numbers
        eqs = []
        for u in layer.units:
            rows = [Row("=", b.tex(u.rule))]
            rows += [Row("=", b.tex(f, keep_order=True)) for f in u.forms[1:]]
            eqs.append(Equation(b.names[u.delta], tuple(rows)))
        for g in layer.weights + layer.biases:
            eqs.append(Equation(b.names[g.gradient], (Row("=", b.tex(g.rule)),)))
        title = b.layer_title(layer.layer - 1)
        groups.append(Group(title, "", tuple(eqs)))
    recursion_note = (f"Every derivative above follows one recursion, for {one}: the $\\delta$ of a unit is "
                      f"$\\partial E/\\partial a$ times the slope of its activation; a hidden unit's "
                      f"$\\partial E/\\partial a$ is the sum, over the units it feeds, of their $\\delta$ "
                      f"times the connecting weight; and a parameter's derivative is the $\\delta$ of its unit "
                      f"times what the parameter multiplies (1 for a bias).")

    form = sections.matrix
    names = {**b.names, **{k: n.latex for k, n in form.names.items()}}
    # in the order formulas.py wrote them: W X + b, ∂E/∂A ⊙ f′(Z), not sympy's alphabetical 1 b + W X
    # short: the formulas for any depth below are this matrix form, a layer at a time; full: with the numbers
    # of every matrix, computed by matrix algebra alone and checked against the chain rule's (derived.checked)
    values = formulas.matrix_values(form, b.net, b.tr.first) if b.full else {}
    matrix = tuple(Formula(Equation(tex(eq.lhs, names), (Row("=", tex(eq.rhs, names, keep_order=True)),)
                                    + _matrix_numbers(b, values.get(eq.lhs))),
                           _sentence(eq.meaning), _shapes(eq, names))
                   for eq in (form.forward + form.backward if b.full else ()))
    each = "row" if spec.convention == "row" else "column"
    matrix_note = (f"The same computation for {f'all {b.N} samples' if b.N > 1 else 'the sample'} at once, one "
                   f"{each} per sample, in the {spec.convention}-vector convention of this network. $\\odot$ multiplies "
                   f"entry by entry; $\\mathbf{{1}}$ is a vector of ones. Each product's shapes "
                   f"agree (SymPy checks them when it builds the equation); the table beside each "
                   f"equation lists them. Each equation ends with its matrix of values, computed by matrix algebra "
                   f"alone and compared with the chain rule's, entry by entry, before it is printed.")

    any_depth, any_depth_note = _any_depth(b, sections.general)
    return General(recursion_note, tuple(groups), matrix_note, matrix, any_depth_note, any_depth)


def _matrix_numbers(b: _Builder, M: sp.ImmutableMatrix | None) -> tuple[Row, ...]:
    """A matrix of values as the equation's last row (none where the form has no matrix of its own there),
    printed like every matrix with numbers: placeholders the builder fills with the shown values."""
    if M is None:
        return ()
    slots = sp.Matrix(M.rows, M.cols, lambda i, j: sp.Dummy())
    text, exact_ = b.matrix_tex(slots, {slots[i, j]: M[i, j] for i in range(M.rows) for j in range(M.cols)})
    return (Row("=" if exact_ else r"\approx", text),)


def _any_depth(b: _Builder, equations: Sequence[general.GeneralEquation]) -> tuple[tuple[Formula, ...], str]:
    """The general formulas in layer notation for a network of this kind at any depth, and their note."""
    spec = b.spec
    formulas_ = []
    for eq in equations:
        writer = general.Writer(b.net, concrete=False)
        lhs, *forms = eq.at(writer)
        rows = tuple(Row("=", tex(f, writer.names, keep_order=True)) for f in forms)
        where = _WHERE[eq.layers] if not eq.only else f"here layer{'s' if len(eq.only) > 1 else ''} ${_listing(eq.only)}$"
        formulas_.append(Formula(Equation(tex(lhs, writer.names), rows), _sentence(eq.meaning) + f" ({where})"))
    each = "row vector" if spec.convention == "row" else "column vector"
    note = (f"The same recursion for a network of any depth $L$ with layers like these, one sample at a time: "
            f"every quantity of a layer is a {each}{', as in the matrix form' if b.full else ''}, $n_l$ is the width of layer $l$, and "
            rf"$\mathbf{{a}}^{{(l)}} = f_l(\mathbf{{z}}^{{(l)}})$ with $\mathbf{{a}}^{{(0)}} = \mathbf{{x}}$. The "
            rf"layer is written on top ($W^{{(l)}}$, $\boldsymbol{{\delta}}^{{(l)}}$), so it cannot be mistaken "
            rf"for one unit's name; $e$ is one sample's loss and $E = \sum_n e_n$.")
    acts = spec.activations
    if len(set(acts[:-1])) > 1:
        note += " " + ", ".join(f"$f_{{{l}}} = {b.net.activation(l - 1).latex}$" for l in range(1, len(acts)))
        note += " are the activations of the hidden layers."
    return tuple(formulas_), note


_WHERE = {general.Layers.OUTPUT: "layer $L$", general.Layers.HIDDEN: "layers $l < L$",
          general.Layers.EVERY: "every layer $l$", general.Layers.CLOSED: "every layer $k$"}


def _sentence(text: str) -> str:
    """A meaning as a sentence start: capitalised, Unicode math kept as text."""
    return text[:1].upper() + text[1:]


def _notation_general(net: Network, sections: _Sections, matrix: bool) -> tuple[NameRow, ...]:
    """The symbols of the matrix form (where it is shown) and of the general formulas, which the notation
    table also lists."""
    rows = []
    seen = set()
    for n in sections.matrix.names.values() if matrix else ():
        if n.plain not in seen:
            seen.add(n.plain)
            rows.append(NameRow(n.latex, n.plain, n.meaning))
    writer = general.Writer(net, concrete=False)
    for eq in sections.general:
        eq.at(writer)
    for family in dict.fromkeys(writer.used.values()):     # each family once, at layer l (the outputs at L)
        at = general.L if family in (general.DEDA, general.TARGET) else general.LAYER
        plain = family.plain if family is general.TARGET else f"{family.plain}({at})"
        rows.append(NameRow(writer.latex(family, at), plain, family.meaning))
    rows += [NameRow("n_{l}", "n(l)", "number of units of layer l (n_0: inputs)"),
             NameRow("L", "L", "the output layer's number"), NameRow("N", "N", "number of samples"),
             NameRow("J", "J", "number of outputs")]
    return tuple(rows)


def _split_sum(rows: list[Row]) -> tuple[Row, ...]:
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
    sections = _checked_sections(shown, view.full)         # first: a formula that does not hold stops here
    focus = _focus(shown, view.focus)
    b = _Builder(shown, precision, focus, view.full)
    whole = b if shown is solution else _Builder(solution, precision)      # the data, the history, the last step
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
        setup=_setup(whole),
        notation=_notation(b, brief=not view.full and "setup" in view.sections),
        notation_general=_notation_general(b.net, sections, view.full),
        forward=forward,
        loss=_step_loss(b, whole),
        backward=backward,
        batch=b.batch_group(),
        general=_general(b, sections),
        update=b.update_group(),
        update_matrices=b.update_matrices(),
        widest=max(b.weight_matrix(l).cols for l in range(b.spec.depth)),
        # short: the new outputs and loss in the table; the forward pass that gives them is the one above again
        after=After(tuple(b.forward_part(env, n) for n, env in enumerate(after.samples, 1)) if view.full else (), outputs,
                    Comparison("E", "E", 0, b.num(first.loss), b.num(after.loss))),
        history=_history(whole),
        verification=verify(solution),
        formulas=sections.checks,
        samples=b.N,
        outline=_outline(view.sections, whole),
        focus=tuple(b.names[p] for p in focus),
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
                   update_matrices=tuple(_on_one_line(eq) for eq in doc.update_matrices))


def _on_one_line(eq: Equation) -> Equation:
    """A derivation whose rows fit on one line, written on one (a row without a relation continues the one
    before it: − η times the gradient matrix)."""
    return replace(eq, inline=width(eq.lhs + " ".join(f"{r.relation} {r.tex}" for r in eq.rows)) <= LINE)


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


def _outline(sections: Sequence[str], b: _Builder) -> Outline:
    """The sections ``--sections`` asks for, in the documents' order; an unknown or empty one is an error."""
    for key in sections:
        if key not in SECTIONS:
            raise RenderError(f"--sections: no section is named {key!r}; expected some of {', '.join(SECTIONS)}")
    if "history" in sections and b.spec.steps == 1 and tuple(sections) != SECTIONS:
        raise RenderError("--sections: history: the spec trains one step ([train].steps = 1), so there is no "
                          "loss history to show")
    return Outline(tuple(k for k in SECTIONS if k in sections))


def chain_equation(solution: "Solution", v: Symbol, n: int, precision: int | Rounding = DEFAULT_PRECISION) -> Equation:
    """The chain-rule equation of ∂E/∂v for sample ``n`` (from 1) of the first step, as the worked solution shows it:
    the chain of partials, their expressions, their numbers, the value."""
    samples = solution.training.first.samples
    return _Builder(solution, precision).chain_equation(v, set(), samples[n - 1], n)


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
