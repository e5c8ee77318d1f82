"""The sections of a worked solution that stand apart from its passes: setup, notation, general formulas, history."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

import sympy as sp
from sympy import Symbol

from derive.derived import formulas, general
from derive.derived.checked import FormulaChecks, check_formulas
from derive.derived.solution import Solution
from derive.model.convention import Convention
from derive.model.network import Network, per_kind
from derive.model.spec import Optimizer, Spec
from derive.numeric.rounding import Number
from derive.numeric.values import forward, frozen
from derive.text.builder import Builder
from derive.text.chains import wrapped
from derive.text.layout import (
    DX,
    STRICT_WIDEST,
    WIDEST,
    Segment,
    label_width,
    pieces,
    place,
)
from derive.text.model import (
    Comparison,
    Diagram,
    Equation,
    Formula,
    General,
    Group,
    History,
    LayerRow,
    Link,
    NameRow,
    Node,
    ParameterRow,
    Row,
    Setup,
    Shape,
)
from derive.text.printer import tex

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


def _layer_rows(b: Builder) -> tuple[LayerRow, ...]:
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


def _diagram(b: Builder) -> Diagram:
    spec, net = b.spec, b.net
    first = b.tr.first.parameters
    layers = spec.layers
    top = (max(layers) - 1) / 2
    nodes, links = [], []
    for l, n in enumerate(layers):
        units = net.inputs if l == 0 else net.activations[l - 1]
        kind = "input" if l == 0 else "output" if l == spec.depth else "hidden"
        for j, u in enumerate(units):
            nodes.append(Node(f"n{l}_{j}", b.names[u], b.d.names[u].plain, kind, float(l), (n - 1) / 2 - j,
                              pieces(b.names[u])))
    for l in range(spec.depth):
        if spec.bias.of(l) != "none":
            nodes.append(Node(f"bias{l}", "1", "1", "bias", l + 0.35, top + 1.0))
    for l in range(spec.depth):
        for j, row in enumerate(net.weights[l]):
            for k, w in enumerate(row):
                links.append(Link(f"n{l}_{k}", f"n{l + 1}_{j}", b.names[w], b.d.names[w].plain, b.num(first[w]),
                                  0.25, pieces(b.names[w])))
        biases = net.biases[l]          # a shared bias once per unit: one label says it
        for j, bias in enumerate(biases):
            links.append(Link(f"bias{l}", f"n{l + 1}_{j}", b.names[bias], b.d.names[bias].plain,
                              b.num(first[bias]), 0.5, pieces(b.names[bias]), shown=bias not in biases[:j]))
    height = top * 2 + (1.0 if spec.bias.any else 0.0)
    # beyond 6 × 6 edges between two layers no layout holds a legible label on every edge (8-8 never did, at any
    # spacing): the search for one took most of a wide document's time, so it is not made
    dense = any(n * m > LEGIBLE_EDGES for n, m in zip(layers, layers[1:]))
    diagram = Diagram(tuple(nodes), tuple(links), float(spec.depth), height, False, DX, every=not dense)
    return diagram if dense else _labelled(diagram)


def _labelled(diagram: Diagram) -> Diagram:
    """The diagram with each label placed clear of the others and of the units, the layers moved apart as
    far as WIDEST where that is what it takes; unlabelled where even that is not enough."""
    shown = [link for link in diagram.links if link.shown]
    widths = [label_width(link.pieces, link.value.plain) for link in shown]
    # clear of the other edges too where the layers need not move far apart for it (a wide picture prints
    # small); otherwise clear of the other labels, each written on a white ground over the edges it crosses
    tries = [(True, dx) for dx in range(DX, STRICT_WIDEST + 1, 40)] + [(False, dx) for dx in range(DX, WIDEST + 1, 40)]
    for strict, dx in tries:
        where = diagram.pixels(dx)
        edges = [Segment(*where[link.source], *where[link.target]) for link in shown]
        positions = place(edges, widths, list(where.values()), strict)
        if positions is not None:
            placed = iter(positions)
            links = tuple(replace(link, position=next(placed)) if link.shown else link for link in diagram.links)
            return replace(diagram, links=links, labelled=True, dx=dx)
    return diagram


LEGIBLE_EDGES = 36      # edges between two layers that a diagram can label legibly: 6 × 6 (issue 9 asks for 6 units)


def setup_section(b: Builder) -> Setup:
    """The network, the whole data and how it is trained."""
    spec, net, first = b.spec, b.net, b.tr.first
    fixed = frozen(b.d)
    loss, definition = b.loss_tex_formula()[0], b.loss_definition_tex()
    # E = Σ eₙ, eₙ = 1/(N J) (y − o)² = ½ (y − o)², N = 2, J = 1: where the 1/N and the 1/J go
    total = rf"\sum_{{n=1}}^{{{b.N}}} e_{{n}}"
    pieces = [f"E = {total}"] if b.N > 1 else []
    pieces.append(("E" if b.N == 1 else "e_{n}") + " = " + (loss if definition is None else f"{definition} = {loss}"))
    if definition is not None:
        pieces += [f"N = {b.N}", f"J = {spec.layers[-1]}"]
    # the space before each piece after the first, widest first: before eₙ = …, before N = …, before J = …
    gaps = ([r", \qquad "] if b.N > 1 else []) + [r", \quad ", r",\ "]
    loss_tex = pieces[0] + "".join(gap + piece for gap, piece in zip(gaps, pieces[1:], strict=False))
    # the same as aligned lines, for a page too narrow for it: eₙ's definition and its value on lines of their own
    lines = [Equation("E", (Row("=", total),))] if b.N > 1 else []
    lhs = "E" if b.N == 1 else "e_{n}"
    views = [("=", t) for t in (b.loss_definition_tex(lhs), b.loss_tex_formula(lhs=lhs)[0]) if t]
    lines.append(Equation(lhs, wrapped(views)))
    if definition is not None:
        lines.append(Equation("N", (Row("=", rf"{b.N},\quad J = {spec.layers[-1]}"),)))
    header = tuple(b.names[s] for s in net.inputs + net.targets)
    data = tuple(tuple(b.num(v) for v in x + y) for x, y in zip(spec.x, spec.y))
    params = tuple(ParameterRow(b.names[p], b.d.names[p].plain, b.d.names[p].meaning, b.num(first.parameters[p]))
                   for p in net.parameters)
    loss_name = spec.loss if spec.reduction == "mean" else f"{spec.loss}, reduction = sum"
    return Setup(_architecture(spec.layers), _layer_rows(b), loss_name, loss_tex, tuple(pieces), tuple(lines),
                 b.num(spec.learning_rate),
                 b.rates_tex(), spec.steps, _training(b), _bias_text(spec), tuple(b.names[p] for p in net.parameters if p in fixed),
                 header, data, params, b.setup_matrices(), _diagram(b))


def step_loss(b: Builder, whole: Builder) -> Group:
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


def _training(b: Builder) -> str:
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


def notation_rows(b: Builder, brief: bool) -> tuple[NameRow, ...]:
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
    parameters = frozenset(net.parameters)         # a set: the network's tuple made this loop quadratic
    for v in _reading_order(net, d.backward_order):
        if not (brief and v in parameters):
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


def _loss_names(b: Builder) -> tuple[NameRow, ...]:
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


def _gradient_names(b: Builder) -> tuple[NameRow, ...]:
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


def history_section(b: Builder) -> History | None:
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


def _final_state(b: Builder) -> tuple[tuple[ParameterRow, ...], tuple[Comparison, ...]]:
    """The parameters after the last step (the tape's doubles) and the outputs they give, sample by sample."""
    final = b.tr.final
    rows = tuple(ParameterRow(b.names[p], b.d.names[p].plain, b.d.names[p].meaning, b.num(final[p], inexact=True))
                 for p in b.net.parameters)
    # the forward pass at those doubles, exactly: the outputs a reader gets from the parameters shown unrounded
    last = forward(b.d, {p: sp.Rational(final[p]) for p in b.net.parameters})
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
    matrix: formulas.MatrixForm | None
    general: tuple[general.GeneralEquation, ...]
    checks: FormulaChecks


def checked_sections(solution: Solution, full: bool) -> _Sections:
    """The general formulas this document prints, each checked first (short: those for any depth only)."""
    recursion = formulas.layer_recursion(solution.derivation) if full else ()      # short: never printed
    form = formulas.matrix_form(solution.network) if full else None        # short: never printed
    equations = general.general_equations(solution.network)
    checks = check_formulas(solution, recursion, form, equations)
    return _Sections(recursion, form, equations, checks)


def general_section(b: Builder, sections: _Sections) -> General:
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
    names = {**b.names, **{k: n.latex for k, n in form.names.items()}} if form is not None else b.names
    # in the order formulas.py wrote them: W X + b, ∂E/∂A ⊙ f′(Z), not sympy's alphabetical 1 b + W X
    # short: the formulas for any depth below are this matrix form, a layer at a time; full: with the numbers
    # of every matrix, computed by matrix algebra alone and checked against the chain rule's (derived.checked)
    values = formulas.matrix_values(form, b.net, b.tr.first) if form is not None else {}
    matrix = tuple(_matrix_formula(b, eq, names, formulas.values_of(form, values, eq.lhs))
                   for eq in (form.forward + form.backward if form is not None else ()))
    matrix_note = (f"The same computation for {f'all {b.N} samples' if b.N > 1 else 'the sample'} at once, one "
                   f"{_CONVENTION_WORDS[spec.convention]}. $\\odot$ multiplies "
                   f"entry by entry; $\\mathbf{{1}}$ is a vector of ones. Each product's shapes "
                   f"agree (SymPy checks them when it builds the equation); the table beside each "
                   f"equation lists them. Each equation ends with its matrix of values, computed by matrix algebra "
                   f"alone and compared with the chain rule's, entry by entry, before it is printed.")

    any_depth, any_depth_note = _any_depth(b.net, sections.general, b.full)
    return General(recursion_note, tuple(groups), matrix_note, matrix, any_depth_note, any_depth)


# the matrix form's layout, after "one …": the third seed's W_ih is 4×5 and its products use W_ihᵀ
_CONVENTION_WORDS = {
    Convention.COLUMN: "column per sample, in the column-vector convention of this network",
    Convention.ROW: "row per sample, in the row-vector convention of this network",
    Convention.TRANSPOSED: (r"column per sample; this network stores each $W^{(l)}$ input × output, one row per "
                            r"unit of the layer below, so the products use its transpose $W^{(l)\mathsf{T}}$"),
}


def _matrix_formula(b: Builder, eq: formulas.Equation, names: Mapping, matrices: Sequence[sp.ImmutableMatrix]) -> Formula:
    """One equation of the matrix form, ending in its values where matrix algebra gives every one."""
    meaning = _sentence(eq.meaning)
    if not all(v.is_finite for M in matrices for v in M):
        # o = 1 to every digit worked with: ∂E/∂o = (o − y)/(o(1 − o)) is no number in plain arithmetic, where
        # the chain rule's saturation-safe values (above) are; a value that is not true is not printed
        matrices = ()
        meaning += (" (no values: a saturated unit makes an entry infinite or 0/0 in plain matrix arithmetic at "
                    "every precision; the backward pass above gives the chain rule's values)")
    rows = (Row("=", tex(eq.rhs, names, keep_order=True)),) + _matrix_numbers(b, matrices)
    return Formula(Equation(tex(eq.lhs, names), rows), meaning, _shapes(eq, names))


def _matrix_numbers(b: Builder, matrices: Sequence[sp.ImmutableMatrix]) -> tuple[Row, ...]:
    """The matrix of values as the equation's last row (none where the form has none), or a softmax δ_n's one
    matrix per sample, n = 1, …, N; printed like every matrix with numbers: placeholders the builder fills."""
    if not matrices:
        return ()
    texts, exact_ = [], True
    for M in matrices:
        slots = sp.Matrix(M.rows, M.cols, lambda i, j: sp.Dummy())
        text, exact_M = b.matrix_tex(slots, {slots[i, j]: M[i, j] for i in range(M.rows) for j in range(M.cols)})
        texts.append(text)
        exact_ = exact_ and exact_M
    text = ", ".join(texts) + (rf" \quad (n = 1, \dots, {len(texts)})" if len(texts) > 1 else "")
    return (Row("=" if exact_ else r"\approx", text),)


@per_kind
def _any_depth(net: Network, equations: tuple[general.GeneralEquation, ...], full: bool) -> tuple[tuple[Formula, ...], str]:
    """The general formulas in layer notation for a network of this kind at any depth, and their note (once per
    kind: an exam's variants and the gallery print them alike)."""
    spec = net.spec
    formulas_ = []
    for eq in equations:
        writer, (lhs, *forms) = general.written(net, eq)
        rows = tuple(Row("=", tex(f, writer.names, keep_order=True)) for f in forms)
        where = _WHERE[eq.layers] if not eq.only else f"here layer{'s' if len(eq.only) > 1 else ''} ${_listing(eq.only)}$"
        formulas_.append(Formula(Equation(tex(lhs, writer.names), rows), _sentence(eq.meaning) + f" ({where})"))
    each = "row vector" if spec.convention.rows else "column vector"
    note = (f"The same recursion for a network of any depth $L$ with layers like these, one sample at a time: "
            f"every quantity of a layer is a {each}{', as in the matrix form' if full else ''}, $n_l$ is the width of layer $l$, and "
            rf"$\mathbf{{a}}^{{(l)}} = f_l(\mathbf{{z}}^{{(l)}})$ with $\mathbf{{a}}^{{(0)}} = \mathbf{{x}}$. The "
            rf"layer is written on top ($W^{{(l)}}$, $\boldsymbol{{\delta}}^{{(l)}}$), so it cannot be mistaken "
            rf"for one unit's name; $e$ is one sample's loss and $E = \sum_n e_n$.")
    if spec.convention.uses_transpose:
        note += (r" $W^{(l)}$ is $n_{l-1} \times n_l$, one row per unit of the layer below, as this network stores "
                 r"it, so the net inputs take its transpose and $\partial e / \partial W^{(l)}$ has its shape.")
    hidden, output = general.linear_slopes(net)
    note += _linear_words(hidden, output, net.activation(0 if hidden else spec.depth - 1).latex)
    acts = spec.activations
    if len(set(acts[:-1])) > 1:
        note += " " + ", ".join(f"$f_{{{l}}} = {net.activation(l - 1).latex}$" for l in range(1, len(acts)))
        note += " are the activations of the hidden layers."
    return tuple(formulas_), note


def _linear_words(hidden: bool, output: bool, f: str) -> str:
    """The sentence that says why a linear layer's δ has no slope factor (its slope is 1), or nothing; ``f``: the
    linear function as the registry prints it."""
    which = ("every layer is" if hidden and output else "the hidden layers are" if hidden
             else "the output layer is" if output else None)
    if which is None:
        return ""
    identity = rf", and $\operatorname{{diag}}({f}'(\mathbf{{z}}))$, the identity, out of the product" if hidden else ""
    return (rf" Here {which} linear, ${f}(z) = z$, whose slope ${f}'(z)$ is 1: the "
            rf"factor $\odot\, {f}'(\mathbf{{z}})$ is left out of $\boldsymbol{{\delta}}${identity}.")


_WHERE = {general.Layers.OUTPUT: "layer $L$", general.Layers.HIDDEN: "layers $l < L$",
          general.Layers.EVERY: "every layer $l$", general.Layers.CLOSED: "every layer $k$"}


def _sentence(text: str) -> str:
    """A meaning as a sentence start: capitalised, Unicode math kept as text."""
    return text[:1].upper() + text[1:]


def general_notation_rows(net: Network, sections: _Sections, matrix: bool) -> tuple[NameRow, ...]:
    """The symbols of the matrix form (where it is shown) and of the general formulas, which the notation
    table also lists."""
    rows = []
    seen = set()
    for n in sections.matrix.names.values() if matrix and sections.matrix is not None else ():
        if n.plain not in seen:
            seen.add(n.plain)
            rows.append(NameRow(n.latex, n.plain, n.meaning))
    used: dict[str, general.Family] = {}        # in the order the equations write them
    for eq in sections.general:
        for latex, family in general.written(net, eq)[0].used.items():
            used.setdefault(latex, family)
    writer = general.Writer(net, concrete=False)
    for family in dict.fromkeys(used.values()):     # each family once, at layer l (the outputs at L)
        at = general.L if family in (general.DEDA, general.TARGET) else general.LAYER
        plain = family.plain if family is general.TARGET else f"{family.plain}({at})"
        rows.append(NameRow(writer.latex(family, at), plain, family.meaning))
    rows += [NameRow("n_{l}", "n(l)", "number of units of layer l (n_0: inputs)"),
             NameRow("L", "L", "the output layer's number"), NameRow("N", "N", "number of samples"),
             NameRow("J", "J", "number of outputs")]
    return tuple(rows)
