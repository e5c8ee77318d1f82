"""What each section of a worked solution needs from one Solution at one precision: numbers, LaTeX, chains."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from functools import cached_property
from typing import Mapping, NamedTuple, Sequence

import sympy as sp
from sympy import Expr, Symbol

from derive.derived import formulas
from derive.derived.checked import FormulaError
from derive.derived.solution import Solution
from derive.model.backprop import Edge
from derive.numeric.rounding import Number, Rounding, number
from derive.numeric import arithmetic
from derive.numeric.arithmetic import Point, Unsupported, agrees, within
from derive.numeric.values import PRECISION, Step, exact, frozen, value
from derive.text.chains import (
    BREAK,
    LINE,
    TERMS_PER_LINE,
    Chain,
    Factor,
    Product,
    Sum,
    only_argument,
    render_chain,
    rows_of,
    split_sum,
    sum_width,
)
from derive.text import gradients
from derive.text.model import (
    Equation,
    GradientRow,
    GradientTable,
    Group,
    LaterUpdate,
    Part,
    Row,
    SampleTable,
    ValueRow,
)
from derive.text.printer import named_matrix, tex, width

MAX_PATH_TERMS = 3      # a chain with a longer sum is written in the δ form instead
SHORT_UPDATES = 12      # more parameters than this: the short update writes one per layer group, then the matrices
SAMPLE_COLUMNS = 5      # samples side by side in one table of the short document


class Slope(NamedTuple):
    """∂e/∂o of a loss whose constant has N or J in it, as a reader should see it."""

    written: Expr       # with N and J as letters: 2/(J N) (o − y)
    front: Expr         # the constant with this spec's N and J: 2/3
    error: Expr         # what it multiplies: o − y


# -- the builder ----------------------------------------------------------------------------

class Builder:
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
        # by the id of a sample's dict or of a value, which each entry holds so that the id stays its own
        self._points: dict[int, tuple[Mapping[Symbol, Expr], Point]] = {}
        self._numbers: dict[tuple[int, bool], tuple[object, Number]] = {}
        self._short: dict[Symbol, Expr | None] = {}
        self._scaled: dict[Symbol, Slope | None] = {}
        # carried rounding: the values rounding changed get ≈ (a sample's env dict is its key)
        self._rounded = {id(env): r for step in (self.tr.first, self.tr.after)
                         for env, r in zip(step.samples, step.rounded)}

    # numbers and formulas -------------------------------------------------------------------
    def num(self, value, inexact: bool = False) -> Number:
        """``value`` as shown; each value formatted once, however many lines and tables show it."""
        key = (id(value), inexact)
        if key not in self._numbers:
            self._numbers[key] = (value, number(value, self.p, inexact=inexact))
        return self._numbers[key][1]

    def value(self, env: Mapping[Symbol, Expr], s: Symbol) -> Number:
        """The value of s in one sample, marked rounded where carried rounding changed it."""
        return self.num(env[s], inexact=s in self._rounded.get(id(env), ()))

    def total(self, step: Step, key: tuple, value: Expr) -> Number:
        """A batch total (loss, gradient, updated parameter), marked rounded where carrying changed it."""
        return self.num(value, inexact=key in step.rounded_totals)

    def tex(self, expr: Expr, keep_order: bool = False) -> str:
        return tex(expr, self.names, keep_order=keep_order)

    def point(self, env: Mapping[Symbol, Expr]) -> Point:
        """One sample's numbers for the engine's arithmetic (values.value), converted once per sample."""
        if id(env) not in self._points:
            self._points[id(env)] = (env, Point(env))
        return self._points[id(env)][1]

    def substituted(self, expr: Expr, env: Mapping[Symbol, Expr], keep_order: bool = False) -> tuple[str, bool]:
        """``expr`` with every symbol replaced by its shown value; whether all of them are exact."""
        shown = {s: self.num(env[s]) for s in expr.free_symbols}
        names = {s: (n.tex if expr == s or only_argument(expr, s) else n.factor) for s, n in shown.items()}
        return tex(expr, names, numbers=True, keep_order=keep_order), all(n.exact for n in shown.values())

    def equation(self, lhs: str, formula: Expr | None, env: Mapping[Symbol, Expr], value: Number,
                 keep_order: bool = False) -> Equation:
        """lhs = formula = formula with numbers = value (repeats dropped)."""
        views = []
        if formula is not None:
            views.append(("=", self.tex(formula, keep_order)))
            text, exact_inputs = self.substituted(formula, env, keep_order)
            views.append(("=" if exact_inputs else r"\approx", text))
        return Equation(lhs, rows_of(views, value, lhs))

    def loss_tex(self, n: int | None) -> str:
        """E with one sample; e_n for sample n of a batch; E for the batch total."""
        return "E" if self.N == 1 or n is None else f"e_{{{n}}}"

    def partial(self, top: str, v: Symbol) -> str:
        return rf"\frac{{\partial {top}}}{{\partial {self.names[v]}}}"

    def slashed(self, top: str, v: Symbol) -> str:
        """∂top/∂v on one line, for a table's row: a fraction there is set in the small text style."""
        return rf"\partial {top}/\partial {self.names[v]}"

    def adjoint_tex(self, v: Symbol, n: int | None, row: bool = False) -> str:
        """δ for a net input, ∂E/∂v (∂e_n/∂v in a batch) for anything else; on one line for a table's ``row``."""
        if v in self.is_net:
            return self.names[self.d.adjoint[v]]
        return (self.slashed if row else self.partial)(self.loss_tex(n), v)

    # display forms of the definitions --------------------------------------------------------
    def net_formula(self, l: int, j: int) -> Expr:
        """z = Σ_k w_jk a_k + b, in the network's order (weights by source unit, bias last)."""
        below = self.net.layer_input(l)
        # evaluate=False a call at a time: sp.evaluate(False) empties SymPy's cache on the way in and out
        terms = [sp.Mul(w, a, evaluate=False) for w, a in zip(self.net.weights[l][j], below)]
        terms += list(self.net.biases[l][j:j + 1])
        return sp.Add(*terms, evaluate=False) if len(terms) > 1 else terms[0]

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

    def loss_definition_tex(self, lhs: str | None = None) -> str | None:
        """One sample's loss with the definition's constant in letters (1/(N J) for MSE), where it has any; a sum
        too wide for a line beside ``lhs`` written an output's term a line."""
        rule = self.spec.rule
        if not rule.scale(formulas.N, formulas.J).free_symbols:
            return None
        return self._sum_tex(rule.scale_latex(self.N, self.spec.layers[-1]), self.loss_formula()[1], None, lhs)[0]

    def scaled_slope(self, o: Symbol) -> Slope | None:
        """∂e/∂o with the loss's N and J as letters (2(o − y)/(J N)), where its constant has them, and that constant
        with this spec's N and J; checked to be the engine's ∂e/∂o once N and J are numbers. The same for every
        sample: once."""
        if o not in self._scaled:
            self._scaled[o] = self._scaled_slope(o)
        return self._scaled[o]

    def _scaled_slope(self, o: Symbol) -> Slope | None:
        scalar, o_, y_ = formulas.loss_slope(self.net)
        if not scalar.free_symbols & {formulas.N, formulas.J}:
            return None
        j = self.net.outputs.index(o)
        constant, rest = scalar.as_independent(o_, y_, as_Add=False)     # 2/(J N) in front, then (o − y)
        error = formulas.as_by_hand(rest, o_).xreplace({o_: o, y_: self.net.targets[j]})
        written = sp.Mul(constant, error, evaluate=False)
        numbers = {formulas.N: sp.Integer(self.N), formulas.J: sp.Integer(self.spec.layers[-1])}
        if sp.cancel(written.xreplace(numbers) - self.d.gradient[o]) != 0:      # rational in o and y
            raise AssertionError(f"∂e/∂o written with N and J is not the engine's: {written}")
        return Slope(written, constant.xreplace(numbers), error)

    def loss_tex_formula(self, values: Mapping[Symbol, Expr] | None = None, lhs: str | None = None) -> tuple[str, bool]:
        """The loss formula in LaTeX, the constant in front: ½ (y − o)², or with numbers substituted; whether every
        number is exact. A sum too wide for a line beside ``lhs`` is written an output's term a line."""
        scale, body = self.loss_formula()
        return self._sum_tex("" if scale == 1 else "-" if scale == -1 else tex(scale), body, values, lhs)

    def _sum_tex(self, front: str, body: Expr, values: Mapping[Symbol, Expr] | None,
                 lhs: str | None) -> tuple[str, bool]:
        """``front`` times ``body`` in LaTeX (with ``values`` substituted where given), and whether it is exact. A sum
        wider than a line beside ``lhs`` goes term by term onto lines of their own inside \\Bigl( … \\Bigr), which
        TeX may break, where it breaks no line inside \\left( … \\right)."""
        text, exact_inputs = self._written(body, values)
        if not body.is_Add:
            return f"{front} {text}".strip(), exact_inputs
        whole = rf"{front} \left({text}\right)" if front else text
        if lhs is None or width(f"{lhs} = {whole}") <= LINE:
            return whole, exact_inputs
        parts = [self._written(term, values) for term in body.args]
        terms = f" {BREAK}+ ".join(rf"\left({t}\right)" if term.is_Add else t for (t, _), term in zip(parts, body.args))
        return (rf"{front} \Bigl({terms}\Bigr)" if front else terms), all(e for _, e in parts)

    def _written(self, expr: Expr, values: Mapping[Symbol, Expr] | None) -> tuple[str, bool]:
        """``expr`` in LaTeX in its own order, with ``values`` substituted where given; whether those are exact."""
        if values is None:
            return self.tex(expr, keep_order=True), True
        return self.substituted(expr, values, keep_order=True)

    # chains -----------------------------------------------------------------------------------
    def local_value(self, child: Symbol, parent: Symbol, local: Expr, env: Mapping, n: int) -> Number:
        key = (child, parent, n)
        if key not in self._local_cache:
            self._local_cache[key] = self.num(value(self.d.safe(local), env, PRECISION, self.point(env)))
        return self._local_cache[key]

    def local_factor(self, e: Edge, value: Number, n: int) -> Factor:
        """One local factor of a chain. The loss's slope keeps its constant in front (2/3 (o − y), not SymPy's
        2o/3 − 2y/3), so that a reader sees where the mean's 1/N and the square's 2 went."""
        top = self.names[e.child] if e.child != self.net.loss else self.loss_tex(n)
        slope = self.scaled_slope(e.parent) if e.child == self.net.loss else None
        if slope is not None and abs(slope.front) != 1:     # the constant as the loss's own front is printed
            error = self.tex(slope.error, keep_order=True)
            shown = rf"{tex(slope.front)} \left({error}\right)" if slope.error.is_Add else f"{tex(slope.front)} {error}"
            return Factor(self.partial(top, e.parent), shown, value, False)
        return Factor(self.partial(top, e.parent), self.tex(e.local), value,
                      e.local.is_Add or e.local.could_extract_minus_sign())

    def chain(self, v: Symbol, stops: set[Symbol], env: Mapping, n: int) -> Chain:
        """∂E/∂v as a tree of factors, expanded until a quantity in ``stops`` (or the loss)."""
        terms: list[Factor | Product] = []
        for e in self.d.edges[v]:
            factor = self.local_factor(e, self.local_value(e.child, v, e.local, env, n), n)
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
        views = [("=", render_chain(tree, "partial"))]
        scaled = self.scaled_slope(v) if v in self.net.outputs else None
        if scaled is not None:      # 2/(J N) (o − y) before o − y: where the mean's 1/N and the square's 2 go
            views.append(("=", self.tex(scaled.written, keep_order=True)))
        views.append(("=", render_chain(tree, "expr")))
        short = self.output_delta(v)
        if short is None:
            views.append((exact_inputs, render_chain(tree, "value")))
        else:               # the short form, and the numbers put into it, as a hand derivation goes on
            text, exact = self.substituted(short, env, keep_order=True)
            views += [("=", self.tex(short, keep_order=True)), ("=" if exact else r"\approx", text)]
        lhs = self.adjoint_tex(v, n)
        return Equation(lhs, rows_of(views, self.value(env, self.d.adjoint[v]), lhs))

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
        return Equation(lhs, rows_of(views, self.value(env, self.net.nets[l][j]), lhs))

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
        for n, env in enumerate(step.samples if self.full else step.samples[:1], 1):    # short: the rest in a table
            lhs = self.loss_tex(n)
            formula, definition = self.loss_tex_formula(lhs=lhs)[0], self.loss_definition_tex(lhs)
            numbers, exact_inputs = self.loss_tex_formula(env, lhs)
            views = [("=", definition or ""), ("=", formula), ("=" if exact_inputs else r"\approx", numbers)]
            eqs.append(Equation(lhs, rows_of(views, self.value(env, self.net.loss))))
        note = ""
        if self.N > 1:
            parts = [self.value(env, self.net.loss) for env in step.samples]
            total = self.total(step, ("loss", None), step.loss)
            rows = [Row("=", rf"\sum_{{n=1}}^{{{self.N}}} e_{{n}}"),
                    Row("=" if all(p.exact for p in parts) else r"\approx", " + ".join(p.factor for p in parts)),
                    Row(total.relation, total.tex)]
            eqs.append(Equation("E", split_sum(rows)))
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
                        f"above and are reused here, not derived again: {deltas}.")
                if len(net.nets[l + 1]) > 1:        # every unit feeds each unit above: several paths
                    note += (f" Each unit feeds the {len(net.nets[l + 1])} units of layer {l + 2} and collects one "
                             f"term per path: its chain contains a sum over those paths.")
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
                fits = sum_width(self.chain(p, stops, env, n)) <= MAX_PATH_TERMS
                narrow = narrow and fits
                eqs.append(self.chain_equation(p, stops if fits else set(net.nets[l]), env, n))
            rest = parameters[len(in_full):]
            if self.full:
                eqs += [self.gradient_line(p, env, n) for p in rest]
            table = self.gradient_table(rest, env, n) if self.N == 1 and not self.full else None
            note += self.parameters_note(l, parameters, narrow)     # short with a batch: the table after the pass
            groups.append(Group(self.layer_title(l), note, tuple(eqs), table))
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
                     f"ends in the same $\\delta$")
            if self.N > 1:
                note += (", so its derivative is that $\\delta$ times what the parameter multiplies (1 for a bias): "
                         "the table after this pass lists them for every sample.")
            else:
                note += (": the table after the chains lists each one's derivative, that $\\delta$ times what the "
                         "parameter multiplies (1 for a bias).")
        return note

    def gradient_line(self, p: Symbol, env: Mapping, n: int) -> Equation:
        """∂E/∂p in one line from the δ above: δ_j a_k (δ_j for a bias, Σ_j δ_j for a shared one), with its numbers.

        The rule is the sum over the derivation's edges from p, δ of the child times its local derivative; it is
        checked against the chain rule's value before it is printed."""
        rule, terms = self.rule_formula(p), gradients.terms(self.d, p)
        self.check_line(p, rule, env, scale=gradients.magnitude(terms, self.point(env)) if terms else Fraction(1))
        numbers, exact_inputs = self.substituted(rule, env, keep_order=True)
        lhs = self.adjoint_tex(p, n)
        views = [("=", self.tex(rule, keep_order=True)), ("=" if exact_inputs else r"\approx", numbers)]
        return Equation(lhs, rows_of(views, self.value(env, self.d.adjoint[p]), lhs))

    def rule_formula(self, p: Symbol) -> Expr:
        """Σ over p's edges of the child's δ times its local derivative, δ first as the chain reads (SymPy's own
        order would put a before δ)."""
        return gradients.expression(gradients.edge_terms(self.d, p))

    def gradient_table(self, parameters: Sequence[Symbol], env: Mapping, n: int) -> GradientTable | None:
        """A layer's other parameters (one sample, short), a row each from its δ; every row's rule checked at the
        sample's numbers before it is printed, the layer's rules at once."""
        if not parameters:
            return None
        rules = {p: gradients.terms(self.d, p) for p in parameters}
        self.check_rules({p: r for p, r in rules.items() if r is not None}, env)
        return GradientTable(tuple(self.gradient_row(p, rules[p], env, n) for p in parameters))

    def gradient_row(self, p: Symbol, rule: Sequence[gradients.Term] | None, env: Mapping, n: int) -> GradientRow:
        """One row of a layer's table: its rule printed from the checked terms (a rule of other local derivatives,
        which gradient_table left unchecked, printed by SymPy and checked here)."""
        if rule is None:
            formula = self.rule_formula(p)
            self.check_line(p, formula, env)
            text, (numbers, exact_inputs) = self.tex(formula, keep_order=True), self.substituted(formula, env, True)
        else:
            shown = {s: self.num(env[s]) for t in rule for s in (t.delta, t.times) if s is not None}
            text, (numbers, exact_inputs) = gradients.rule_tex(rule, self.names), gradients.numbers_tex(rule, shown)
        value = self.value(env, self.d.adjoint[p])
        return GradientRow(self.adjoint_tex(p, n, row=True), self.d.names[p].plain, text, "=" if exact_inputs else r"\approx",
                           "" if numbers in (value.tex, text) else numbers, value)

    def check_rules(self, rules: Mapping[Symbol, Sequence[gradients.Term]], env: Mapping) -> None:
        """Each rule gives the chain rule's value at this sample, or the document is not written: the layer's rules
        at once in mpmath; where one fails there (or a value is no finite number), each by check_line, which says
        which and by how much."""
        try:
            if gradients.hold(rules, self.d.adjoint, self.point(env), self.check_digits):
                return
        except Unsupported:
            pass
        point = self.point(env)
        for p, rule in rules.items():
            self.check_line(p, gradients.expression(rule), env, scale=gradients.magnitude(rule, point))

    @property
    def check_digits(self) -> int:
        """The digits a printed rule must agree to: the carried rounding's less one, else 25."""
        return self.s.carry.n - 1 if self.s.carry is not None else 25

    def check_line(self, v: Symbol, rule: Expr, env: Mapping, what: str = "the line for",
                   scale: arithmetic.Number | None = None) -> None:
        """A formula for ∂E/∂v that the document prints gives the chain rule's value (to the carried rounding's
        last digit where values are rounded as they go), or the document is not written. ``scale`` as in
        ``arithmetic.close`` (a table row's Σ |δ a|); None: the formula's own ``propagated`` magnitude, at the
        digits its numbers are known to (a short δ beside a saturated unit is 10⁻⁸⁰⁰ where 1 was the allowance).
        Carried rounding to n decimal places is measured in its absolute unit (a row δ·a of 2-place numbers is
        −0.0236 before its own rounding to −0.02: relative to 0.02 that refused the document)."""
        point = self.point(env)
        ours, engine = value(rule, env, PRECISION, point), exact(env[self.d.adjoint[v]])
        digits = self.check_digits
        carry = self.s.carry
        try:
            if carry is not None:       # the carried rounding's unit decides: n decimal places are an absolute one
                holds = within(ours, engine, digits, Fraction(1) if carry.decimals or scale is None else scale)
            elif scale is None:
                known = arithmetic.known_digits(env[s] for s in rule.free_symbols)
                holds = agrees(ours, engine, digits, rule, point, known)
            else:
                holds = within(ours, engine, digits, scale)
        except Unsupported:         # not a finite number: SymPy's arithmetic says what it says
            holds = not abs(ours - engine) > max(abs(ours), abs(engine), sp.Integer(1)) / sp.Integer(10) ** digits
        if not holds:
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
        note = ("Sample 1's derivatives are worked out above; every sample's, and in the last column the batch's "
                "$\\partial E/\\partial p$, their sum:")
        return self.with_sums(self.sample_tables("Every sample", note, self.backward_quantities()))

    def backward_quantities(self) -> list[tuple[str, Symbol]]:
        """Each sample's ∂e/∂o, the δ the followed parameters need and their ∂e_n/∂p, as (LaTeX, symbol)."""
        net, d = self.net, self.d
        slopes = [(self.slashed("e_{n}", o), o) for o in net.outputs]
        deltas = [(self.adjoint_tex(z, None), z) for l in reversed(range(self.spec.depth)) for z in net.nets[l]
                  if z in self.needed]
        grads = [(self.slashed("e_{n}", p), p) for p in self.focus_order]
        return [(tex, d.adjoint[v]) for tex, v in slopes + deltas + grads]

    def with_sums(self, tables: tuple[SampleTable, ...]) -> tuple[SampleTable, ...]:
        """The last table with a column of the batch's ∂E/∂p beside each ∂e_n/∂p."""
        step = self.tr.first
        sums = {self.slashed("e_{n}", p): self.total(step, ("gradient", p), step.gradient[p]) for p in self.focus_order}
        last = tables[-1]
        rows = tuple(replace(r, total=sums.get(r.tex)) for r in last.rows)
        return tables[:-1] + (replace(last, rows=rows, total=r"\partial E/\partial p"),)

    def sample_tables(self, title: str, note: str, quantities: Sequence[tuple[str, Symbol]],
                      numbers: Sequence[int] = ()) -> tuple[SampleTable, ...]:
        """Tables of SAMPLE_COLUMNS samples each, the values of one step's samples (headed by ``numbers``, the
        data's numbers of the samples, where they are not 1, 2, …)."""
        samples = self.tr.first.samples
        numbers = tuple(numbers) or tuple(range(1, self.N + 1))
        out = []
        for start in range(0, self.N, SAMPLE_COLUMNS):
            columns = range(start, min(start + SAMPLE_COLUMNS, self.N))
            rows = tuple(ValueRow(tex_, tuple(self.value(samples[n], v) for n in columns)) for tex_, v in quantities)
            out.append(SampleTable(title if not start else "", note if not start else "",
                                   tuple(numbers[n] for n in columns), rows))
        return tuple(out)

    def later_update(self, number: int, rows: Sequence[int]) -> LaterUpdate:
        """Update ``number`` (2, 3, …), worked on this Builder's solution, its batch alone: the values of every
        sample of the batch from the parameters the update before left, then the update itself."""
        numbers = tuple(n + 1 for n in rows)
        net = self.net
        given = [(self.names[v], v) for v in (*net.inputs, *net.targets)]
        forward = [(self.names[v], v) for l in range(self.spec.depth) for v in net.nets[l] + net.activations[l]]
        which = (f"sample {numbers[0]}" if len(numbers) == 1
                 else f"samples {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}")
        whose = "the sample's" if len(numbers) == 1 else "each sample's"
        note = (f"From the parameters after update {number - 1}, {which} forward and back, as above: {whose} "
                f"$x$ and $y$, each unit's $z$ and $a$, then the derivatives")
        tables = self.sample_tables("", "", given + forward + self.backward_quantities(), numbers)
        if self.N > 1:
            tables = self.with_sums(tables)
            note += ", and in the last column the batch's $\\partial E/\\partial p$"
        tables = (replace(tables[0], note=note + "."),) + tables[1:]
        update = replace(self.update_group(), title="")
        matrices = self.update_matrices() if len(self.updates_shown) < len(self.focus_order) else ()
        return LaterUpdate(number, f"Update {number}: {which}", tables, update, matrices)

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
            eqs.append(Equation(self.partial("E", p), split_sum(rows)))
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
        return self.net.notation.rate(group).latex if self.per_layer else r"\eta"

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
        # with momentum the first update is p + v with v = μ·0 − η ∂E/∂p: written so that the velocity shows;
        # a later one carries μ times the velocity the update before left
        moved, carried, number = self.momentum_terms(p)
        rel = rel if carried is None or carried.exact else r"\approx"
        start = name if carried is None else rf"{name} + \mu\, v_{{{name}}}"      # p, or p + μ v_p
        if decay is None:
            return (Row(r"\leftarrow", rf"{moved}{start} - {eta}\, {grad}"),
                    Row(rel, rf"{old.tex}{number} - {rate.tex} \cdot {g.factor}"), Row(new.relation, new.tex))
        lam = self.num(self.spec.optimizer.weight_decay)
        return (Row(r"\leftarrow", rf"{moved}{start} - {eta} \left({grad} + \lambda\, {name}\right)"),
                Row(rel, rf"{old.tex}{number} - {rate.tex} \cdot \left({g.tex} + {lam.tex} \cdot {old.factor}\right)"),
                Row(new.relation, new.tex))

    def momentum_terms(self, p: Symbol) -> tuple[str, Number | None, str]:
        """With momentum: "p + v_p = " before the rule, and for a later update μ v_p (its value and its text
        " + μ·v") from the velocity the update before left; without, nothing."""
        optimizer = self.spec.optimizer
        if not optimizer.momentum:
            return "", None, ""
        name = self.names[p]
        if not optimizer.velocity:
            return rf"{name} + v_{{{name}}} = ", None, ""
        before = self.velocity_before[p]
        carried = self.num(optimizer.momentum * before)
        return (rf"{name} + v_{{{name}}} = ", carried,
                rf" + {self.num(optimizer.momentum).tex} \cdot {self.num(before).factor}")

    @cached_property
    def velocity_before(self) -> dict[Symbol, Expr]:
        """Each parameter's velocity before this update: the change the update before made (a later update)."""
        return dict(zip(self.net.parameters, self.spec.optimizer.velocity))

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
        if self.spec.optimizer.velocity:
            return (f" With momentum $\\mu = {mu}$ the new velocity is $v \\leftarrow \\mu v - \\eta\\, \\partial E / "
                    f"\\partial p$, where $v$ on the right is the change the update before made, and $p \\leftarrow "
                    f"p + v$.")
        return (f" With momentum $\\mu = {mu}$ each update is $v \\leftarrow \\mu v - \\eta\\, \\partial E / "
                f"\\partial p$, $p \\leftarrow p + v$; the velocity $v$ starts at 0, so this first update is "
                f"the plain step ($v_p = -\\eta\\, \\partial E / \\partial p$), and each later one adds ${mu}$ "
                f"times the velocity before.")

    # matrices -----------------------------------------------------------------------------------
    def weight_matrix(self, l: int) -> sp.Matrix:
        W = sp.Matrix(self.net.weights[l])
        return W.T if self.spec.convention.stored_in_out else W

    def matrix_tex(self, M: sp.Matrix, values: Mapping[Symbol, Expr] | None = None) -> tuple[str, bool]:
        if values is None:
            return named_matrix(M, self.names) or self.tex(M), True
        shown = {s: self.num(values[s]) for s in M.free_symbols}
        names = {s: v.tex for s, v in shown.items()}
        return named_matrix(M, names) or tex(M, names), all(v.exact for v in shown.values())

    def matrix_name(self, l: int, kind: str) -> str:
        return "W" if kind == "W" else "b"

    def setup_matrices(self) -> tuple[Equation, ...]:
        step = self.tr.first
        eqs = []
        for l in range(self.spec.depth):
            W = self.weight_matrix(l)
            symbolic, _ = self.matrix_tex(W)
            numeric, exact_all = self.matrix_tex(W, step.parameters)
            eqs.append(Equation(self.net.notation.matrix("W", l + 1).latex,
                                (Row("=", symbolic), Row("=" if exact_all else r"\approx", numeric))))
            if self.spec.bias.of(l) == "neuron":
                b = sp.Matrix(self.net.biases[l])
                b = b.T if self.spec.convention.rows else b
                eqs.append(Equation(self.net.notation.matrix("b", l + 1).latex, (Row("=", self.matrix_tex(b)[0]),
                                                         Row("=", self.matrix_tex(b, step.parameters)[0]))))
        return tuple(eqs)

    def update_matrices(self) -> tuple[Equation, ...]:
        if self.focused:        # the followed parameters' own updates say it all
            return ()
        step = self.tr.first
        fixed = frozen(self.d)
        eqs = []
        blocks = []
        names = self.net.notation
        for l in range(self.spec.depth):
            blocks.append(("W", l + 1, self.weight_matrix(l)))
            if self.spec.bias.of(l) == "neuron":
                b = sp.Matrix(self.net.biases[l])
                blocks.append(("b", l + 1, b.T if self.spec.convention.rows else b))
        for kind, layer, M in blocks:
            name, partial = names.matrix(kind, layer).latex, names.matrix_gradient(kind, layer).latex
            if all(p in fixed for p in M):
                continue
            group = self.groups[next(iter(M))]
            eta, rate = self.eta(group), self.num(self.spec.optimizer.rate(group))
            old, old_exact = self.matrix_tex(M, step.parameters)
            decayed = any(p in (step.decay or {}) for p in M)
            # with weight decay the matrix subtracted is ∂E/∂W + λW, entry by entry (a bias without decay: + 0)
            grad, grad_exact = self.matrix_tex(M, step.objective_gradient if decayed else step.gradient)
            new, new_exact = self.matrix_tex(M, step.updated)
            rule = (rf"{name} - {eta} \left({partial} + \lambda {name}\right)" if decayed
                    else rf"{name} - {eta}\, {partial}")
            carried = self.carried_matrix(M)
            eqs.append(Equation(name, (
                Row(r"\leftarrow", rule if carried is None else rf"{name} + \mu V_{{{name}}}" + rule[len(name):]),
                Row("=" if old_exact and grad_exact else r"\approx", old),
                *(() if carried is None else (Row("", carried),)),
                Row("", rf"- {rate.tex} {grad}"),
                Row("=" if new_exact else r"\approx", new))))
        return tuple(eqs)

    def carried_matrix(self, M: sp.Matrix) -> str | None:
        """For a later update with momentum, "+ μ V": the velocity the update before left, as a matrix."""
        optimizer = self.spec.optimizer
        if not (optimizer.momentum and optimizer.velocity):
            return None
        return rf"+ {self.num(optimizer.momentum).tex} {self.matrix_tex(M, self.velocity_before)[0]}"
