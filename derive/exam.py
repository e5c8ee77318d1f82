"""derive exam: randomized exam variants, their questions and verified answers, written as sheets and keys."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from math import prod
from typing import Any, Callable, Iterable, Sequence

import sympy as sp
from sympy import Expr, Symbol

from .api import Solution
from .backprop import Edge
from .errors import ExamError, SpecError
from .latex import plain as plain_formula
from .spec import Spec
from .values import exact
from .variants import Ask, ExamConfig, build_spec, config, degenerate, draw, variant_seed

MAX_RETRIES = 200           # re-draws of one variant that came out like an earlier one
EXACT_TRIES = 200           # candidates that pass the cheap float screen and are then solved exactly
DISTRACTORS = 3             # wrong options of a multiple-choice question
MAX_FORMULA = 160           # characters of a formula a student is asked to write down


class Degenerate(Exception):
    """A drawn variant breaks a quality constraint; the message names the constraint."""


# -- questions as data ------------------------------------------------------------------------

@dataclass(frozen=True)
class Math:
    """A formula inside a prompt: its LaTeX and its plain-text form."""

    latex: str
    plain: str


def plain(segments: Iterable[str | Math]) -> str:
    return "".join(s.plain if isinstance(s, Math) else s for s in segments)


@dataclass(frozen=True)
class Option:
    """One option of a multiple-choice question (or of the formula question's Moodle version)."""

    plain: str                   # as typed: a decimal or a formula in the claim syntax
    latex: str
    value: float | None          # the number, for numerical options
    mistake: str | None          # None for the right answer; else the typical mistake it stands for


@dataclass(frozen=True)
class Question:
    """One question of one variant, with its verified answer."""

    id: str
    kind: str
    quantity: str                # the claim's left side for `derive check` (shape: ``shape(…)``)
    prompt: tuple[str | Math, ...]
    answer: float | str          # a number (rounded to the exam's decimals), a formula, or a shape "2x3"
    display: str                 # the answer as printed: "0.0812", "h1*x1*(1 - h1)*…", "2x3"
    latex: str                   # the answer in LaTeX
    tolerance: float | None      # absolute, for numerical answers
    options: tuple[Option, ...] = ()     # choice: in the order shown; formula: right answer and mistakes
    context: tuple[str | Math, ...] = () # text shown before the prompt (the matrix form of a shape question)
    displays: tuple[str, ...] = ()       # displayed equations after the context

    @property
    def text(self) -> str:
        return plain(self.prompt)

    @property
    def tolerance_text(self) -> str:
        """The tolerance as a plain decimal (0.00005, never 5e-05)."""
        return "" if self.tolerance is None else format(Decimal(repr(self.tolerance)), "f")

    @property
    def numeric(self) -> bool:
        return isinstance(self.answer, float)

    @property
    def letter(self) -> str | None:
        """The letter of the right option of a multiple-choice question."""
        for i, option in enumerate(self.options):
            if option.mistake is None and self.kind == "choice":
                return "abcdefgh"[i]
        return None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "prompt": self.text, "quantity": self.quantity,
                               "answer": self.answer, "display": self.display, "tolerance": self.tolerance}
        if self.kind == "choice":
            out["options"] = [o.value for o in self.options]
            out["correct"] = self.letter
            out["distractors"] = [{"value": o.value, "display": o.plain, "mistake": o.mistake}
                                  for o in self.options if o.mistake]
        elif self.options:
            out["distractors"] = [{"formula": o.plain, "mistake": o.mistake} for o in self.options if o.mistake]
        return out


@dataclass(frozen=True)
class Variant:
    """One exam variant: its complete spec (the TOML structure) and its questions."""

    number: int
    seed: int
    raw: dict
    questions: tuple[Question, ...]

    def fingerprint(self) -> tuple[str, tuple[str, ...]]:
        """What must differ between variants: the numbers of the spec, and the numerical answers."""
        data = repr((self.raw["network"], self.raw["data"], self.raw["init"], self.raw["train"]))
        return data, tuple(q.display for q in self.questions if q.numeric)


# -- numbers ------------------------------------------------------------------------------------

def _decimal(value: Expr) -> Decimal:
    """An exact or 60-digit value as a Decimal with enough digits for any rounding we do."""
    value = sp.sympify(value)
    with localcontext() as ctx:
        ctx.prec = 50
        if value.is_Rational:
            return Decimal(int(value.p)) / Decimal(int(value.q))
        return Decimal(str(sp.Float(value, 50)))


def fixed(value: Expr, decimals: int) -> str:
    """``value`` rounded half up to ``decimals`` places, always with that many places: 0.0810."""
    text = str(_decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))
    return "0." + "0" * decimals if text.lstrip("-").strip("0.") == "" else text


def tolerance(cfg: ExamConfig, answer: float) -> float:
    """The absolute tolerance of a numerical answer, rounded up to one digit beyond the answer's."""
    tol = Decimal(repr(cfg.tolerance_for(answer)))
    return float(tol.quantize(Decimal(1).scaleb(-(cfg.decimals + 1)), rounding=ROUND_CEILING))


def apart(cfg: ExamConfig, a: float, b: float) -> bool:
    """Two options a student tells apart: outside each other's tolerance and at least 5 % apart."""
    gap = abs(a - b)
    return gap > max(tolerance(cfg, a), tolerance(cfg, b)) and gap >= 0.05 * max(abs(a), abs(b))


def significant(value: Expr, decimals: int, digits: int = 2) -> bool:
    """At least ``digits`` significant digits when rounded to ``decimals`` places: 0.0020 has two at 4 places."""
    return abs(Decimal(fixed(value, decimals))) >= Decimal(1).scaleb(digits - 1 - decimals)


# -- plain-text formulas in the claim syntax of `derive check` -----------------------------------

def formula_text(expr: Expr) -> str:
    """A formula as a student would type it: ``sigmoid(z_h1)``, ``(o - y)*h1``."""
    return plain_formula(expr)


def typeable(expr: Expr) -> bool:
    """Whether a formula uses only what the claim syntax knows: ReLU's step as relu'(z), but no piecewise."""
    steps = expr.atoms(sp.Heaviside)
    return not expr.has(sp.Piecewise) and all(len(h.args) == 2 and h.args[1] == 0 for h in steps)


def formula_pool(sol: Solution, target: str | None) -> list[Symbol]:
    """Parameters whose gradient formula a student can write down: typeable and short."""
    return [p for p in parameter_pool(sol, target)
            if typeable(e := gradient_formula(sol, p)) and len(formula_text(e)) <= MAX_FORMULA]


# -- the quantities a question can be about ------------------------------------------------------

LAYER = re.compile(r"([WB])(\d+)$")


def parameter_pool(sol: Solution, target: str | None, trainable: bool = False) -> list[Symbol]:
    """The parameters a target names: one plain name, W<l> (the weights of layer l), B<l> (its biases)."""
    net = sol.network
    frozen_names = set(net.spec.freeze)
    if target is None:
        pool = list(net.parameters)
    elif target in _plain_names(sol, net.parameters):
        pool = [sol.symbol(target)]
    elif (m := LAYER.match(target)) and 1 <= int(m[2]) <= net.spec.depth:
        l = int(m[2]) - 1
        pool = ([w for row in net.weights[l] for w in row] if m[1] == "W"
                else list(dict.fromkeys(net.biases[l])))
    else:
        pool = []
    if trainable:
        pool = [p for p in pool if net.names[p].plain not in frozen_names and not _frozen_layer(sol, p)]
    return pool


def _frozen_layer(sol: Solution, p: Symbol) -> bool:
    net = sol.network
    for l in range(net.spec.depth):
        if f"W{l + 1}" in net.spec.freeze and any(p in row for row in net.weights[l]):
            return True
        if f"b{l + 1}" in net.spec.freeze and p in net.biases[l]:
            return True
    return False


def _plain_names(sol: Solution, symbols: Iterable[Symbol]) -> set[str]:
    return {sol.network.names[s].plain for s in symbols}


def unit_pool(sol: Solution, target: str | None) -> list[Symbol]:
    """The forward-pass quantities a target names: ``output``, ``hidden``, or one plain name."""
    net = sol.network
    hidden = [a for layer in net.activations[:-1] for a in layer]
    if target is None:
        return hidden + list(net.outputs)
    if target == "output":
        return list(net.outputs)
    if target == "hidden":
        return hidden
    units = [s for l in range(len(net.nets)) for s in net.nets[l] + net.activations[l]]
    return [s for s in units if net.names[s].plain == target]


def shape_pool(spec: Spec, target: str | None) -> list[tuple[str, int]]:
    """(kind, layer) pairs a shape question may ask about; layer is 1-based (A: 0 … L−1)."""
    L = spec.depth
    pool = ([("delta", l) for l in range(1, L + 1)] + [("dW", l) for l in range(1, L + 1)]
            + [("WT", l) for l in range(1, L + 1)] + [("AT", l) for l in range(0, L)]
            + [("WTdelta", l) for l in range(2, L + 1)])
    if target is None:
        return pool
    spellings = {"delta": r"[dD]elta(\d+)", "dW": r"(?:dE/)?dW(\d+)", "WT": r"WT(\d+)|W(\d+)T",
                 "AT": r"A(\d+)T?", "WTdelta": r"WTdelta(\d+)"}
    for kind, pattern in spellings.items():
        if m := re.fullmatch(pattern, target):
            l = int(next(g for g in m.groups() if g))
            return [(k, n) for k, n in pool if (k, n) == (kind, l)]
    return []


def validate_targets(sol: Solution, cfg: ExamConfig) -> None:
    """Every fixed target of [exam].questions names something in the template's network."""
    for ask in cfg.questions:
        if ask.target is None:
            continue
        if ask.kind == "forward":
            ok = bool(unit_pool(sol, ask.target))
            hint = "output, hidden, or a unit's name like h1, o1, z_h1"
        elif ask.kind == "shape":
            ok = bool(shape_pool(sol.spec, ask.target))
            hint = "Delta<l>, dW<l>, W<l>T, A<l> or WTdelta<l> for a layer l of the network"
        else:
            ok = bool(parameter_pool(sol, ask.target, trainable=ask.kind == "update"))
            hint = "a parameter's name like w5, or W<l> / B<l> for the weights / biases of layer l"
            if ask.kind == "update" and parameter_pool(sol, ask.target) and not ok:
                hint = "a parameter that [train].freeze does not keep fixed"
        if not ok:
            raise SpecError(sol.spec.source, "[exam].questions",
                            f"{ask.kind}:{ask.target} names nothing in this network; expected {hint}")


# -- typical mistakes, computed from the derivation's own chains ---------------------------------

def _is_activation_edge(sol: Solution, e: Edge) -> bool:
    net = sol.network
    place = net.unit(e.child) if hasattr(net, "unit") else None
    if place is None:
        for l, layer in enumerate(net.activations):
            if e.child in layer:
                place = (l, layer.index(e.child))
    if place is None or e.child is not net.activations[place[0]][place[1]]:
        return False
    name = net.spec.activations[place[0]]
    return name not in ("linear", "softmax")


def altered(sol: Solution, p: Symbol, change: Callable[[Edge], Expr | None],
            keep: Callable[[tuple[Edge, ...]], bool] = lambda chain: True) -> Expr:
    """∂E/∂p as a formula, summed over the chains ``keep`` accepts, with ``change`` replacing local factors."""
    return sp.Add(*(prod((change(e) if change(e) is not None else e.local for e in chain), start=sp.S.One)
                    for chain in sol.derivation.chains(p) if keep(chain)))


def _value(sol: Solution, formula: Expr) -> Expr:
    """A formula in one sample's named symbols, summed over the batch at the initial parameters."""
    return exact(sp.Add(*(formula.xreplace(env) for env in sol.training.first.samples)))


_FORMULAS: dict[tuple, Any] = {}


def architecture(spec: Spec) -> tuple:
    """What the formulas depend on (everything but the numbers): the key of the formula cache."""
    return (spec.layers, spec.activations, spec.slope, spec.bias, spec.loss, spec.convention, spec.samples,
            spec.style)


def _cached(kind: str, sol: Solution, p: Symbol, make: Callable[[], Any]) -> Any:
    """Formulas are the same for every variant of one architecture (symbols are equal by name): build once."""
    key = (kind, architecture(sol.spec), sol.network.names[p].plain)
    if key not in _FORMULAS:
        _FORMULAS[key] = make()
    return _FORMULAS[key]


def gradient_formula(sol: Solution, p: Symbol) -> Expr:
    """∂E/∂p as a sum over chains, common factors pulled out: h1*x1*(1 - h1)*(…)."""
    return _cached("formula", sol, p, lambda: sp.factor_terms(sol.derivation.expanded(p)))


def mistakes(sol: Solution, p: Symbol) -> list[tuple[str, Expr]]:
    """The typical wrong versions of ∂E/∂p as formulas, most typical first, each labelled for feedback."""
    return _cached("mistakes", sol, p, lambda: _mistakes(sol, p))


def _mistakes(sol: Solution, p: Symbol) -> list[tuple[str, Expr]]:
    net, spec = sol.network, sol.spec
    right = altered(sol, p, lambda e: None)
    out: list[tuple[str, Expr]] = []
    derivative = {"sigmoid": "σ′", "tanh": "tanh′", "softplus": "softplus′", "relu": "ReLU′",
                  "leaky_relu": "leaky ReLU′"}
    kinds = [spec.activations[l] for l in range(spec.depth)]
    dropped = altered(sol, p, lambda e: sp.S.One if _is_activation_edge(sol, e) else None)
    names = sorted({derivative.get(k, "f′") for k in kinds if k not in ("linear", "softmax")})
    out.append((f"the activation derivative ({', '.join(names) or 'f′'}) left out", dropped))
    out.append(("the sign flipped", -right))
    if spec.loss in ("half_sse", "quadratic"):
        out.append(("a factor 2 too many (the ½ of the loss not cancelled)", 2 * right))
    elif spec.loss in ("sse", "mse"):
        out.append(("the factor 2 from the square dropped", right / 2))
    wrong = _wrong_input(sol, p)
    if wrong is not None:
        used, instead = wrong
        out.append((f"the wrong input ({net.names[used].plain} instead of {net.names[instead].plain})",
                    altered(sol, p, lambda e: used if e.parent == p and e.local == instead else None)))
    at_output = altered(sol, p, lambda e: _at_output(sol, e))
    out.append(("the activation derivative taken at the output instead of the net input", at_output))
    first = net.outputs[0]
    if len(net.outputs) > 1:
        out.append((f"only the path through {net.names[first].plain} (the other paths left out)",
                    altered(sol, p, lambda e: None, keep=lambda chain: chain[0].parent == first)))
    if spec.samples > 1 and spec.loss in ("mse", "quadratic", "bce", "cross_entropy"):
        out.append(("the 1/N of the mean dropped", right * spec.samples))
    return [(label, formula) for label, formula in out if sp.expand(formula - right) != 0]


def _wrong_input(sol: Solution, p: Symbol) -> tuple[Symbol, Symbol] | None:
    """(the symbol a student wrongly uses, the layer's true input) for a weight: x for h, or the other x."""
    net = sol.network
    for l, layer in enumerate(net.weights):
        for row in layer:
            if p in row:
                k = row.index(p)
                instead = net.layer_input(l)[k]
                if l > 0:
                    return net.inputs[k % len(net.inputs)], instead
                if len(net.inputs) > 1:
                    return net.inputs[(k + 1) % len(net.inputs)], instead
    return None


def _at_output(sol: Solution, e: Edge) -> Expr | None:
    """f′ evaluated at the activation a instead of the net input z (σ(o)(1 − σ(o)) for o(1 − o))."""
    net = sol.network
    for l, layer in enumerate(net.activations):
        if e.child in layer and net.spec.activations[l] in ("sigmoid", "tanh"):
            act = net.activation(l)
            a = e.child
            return act.df(a, act.f(a))
    return None


# -- building the questions of one variant ---------------------------------------------------------

@dataclass
class Asker:
    """Turns the [exam].questions list into the questions of one drawn variant."""

    sol: Solution
    cfg: ExamConfig
    rng: random.Random
    used: set[str] = field(default_factory=set)

    @property
    def d(self):
        return self.sol.derivation

    def name(self, s: Symbol):
        return self.d.names[s]

    def pick(self, pool: Sequence[Symbol], quantity: Callable[[Symbol], str], what: str) -> Symbol:
        fresh = [s for s in pool if quantity(s) not in self.used] or list(pool)
        if not fresh:
            raise Degenerate(f"{what}: nothing to ask about")
        s = self.rng.choice(fresh)
        self.used.add(quantity(s))
        return s

    def numeric(self, id: str, kind: str, quantity: str, prompt, value: Expr, what: str, **extra) -> Question:
        # gradients need two significant digits; a forward value, the loss or a new weight only must not vanish
        digits = 2 if kind in ("gradient", "choice") else 1
        if not significant(value, self.cfg.decimals, digits):
            raise Degenerate(f"no answer that rounds to (almost) zero at {self.cfg.decimals} decimals "
                             f"({what} = {float(value):.2g})")
        display = fixed(value, self.cfg.decimals)
        answer = float(display)
        return Question(id, kind, quantity, tuple(prompt), answer, display, display,
                        tolerance(self.cfg, answer), **extra)

    def gradient_math(self, p: Symbol) -> Math:
        name = self.name(p)
        return Math(rf"\frac{{\partial E}}{{\partial {name.latex}}}", f"dE/d{name.plain}")

    # the kinds --------------------------------------------------------------------------------
    def forward(self, id: str, ask: Ask) -> Question:
        s = self.pick(unit_pool(self.sol, ask.target), lambda s: self.name(s).plain, "forward")
        name = self.name(s)
        net = self.sol.network
        is_net = any(s in layer for layer in net.nets)
        what = ("net input" if is_net else "output" if s in net.outputs else "hidden activation")
        batch = self.sol.spec.samples > 1
        sample = " for the first sample" if batch else ""
        quantity = f"{name.plain}[1]" if batch else name.plain      # the claim syntax's sample index
        prompt = [f"Compute the {what} ", Math(name.latex, name.plain), f" of the forward pass{sample}."]
        return self.numeric(id, "forward", quantity, prompt, self.sol.training.first.samples[0][s], name.plain)

    def loss(self, id: str, ask: Ask) -> Question:
        self.used.add("E")
        prompt = ["Compute the loss ", Math("E", "E"), " for the initial parameters."]
        return self.numeric(id, "loss", "E", prompt, self.sol.training.first.loss, "E")

    def gradient(self, id: str, ask: Ask) -> Question:
        p = self.pick(parameter_pool(self.sol, ask.target), lambda p: f"dE/d{self.name(p).plain}", "gradient")
        m = self.gradient_math(p)
        prompt = ["Compute the gradient ", m, " for the initial parameters."]
        return self.numeric(id, "gradient", m.plain, prompt, self.sol.training.first.gradient[p], m.plain)

    def update(self, id: str, ask: Ask) -> Question:
        pool = parameter_pool(self.sol, ask.target, trainable=True)
        p = self.pick(pool, lambda p: f"{self.name(p).plain}'", "update")
        name, step = self.name(p), self.sol.training.first
        g = step.gradient[p]
        if not significant(g, self.cfg.decimals):
            raise Degenerate(f"no answer that rounds to (almost) zero at {self.cfg.decimals} decimals "
                             f"(dE/d{name.plain} = {float(g):.2g}, asked through {name.plain}')")
        if fixed(step.updated[p], self.cfg.decimals) == fixed(step.parameters[p], self.cfg.decimals):
            raise Degenerate(f"an update that shows at {self.cfg.decimals} decimals ({name.plain}' = {name.plain})")
        rate = self.sol.spec.learning_rate
        prompt = ["Compute the weight " if p not in self._biases() else "Compute the bias ",
                  Math(f"{{{name.latex}}}'", f"{name.plain}'"),       # braces: w^{(1)}_{12}' is a double superscript
                  " after one step of gradient descent with learning rate ",
                  Math(rf"\eta = {_short(rate)}", f"eta = {_short(rate)}"), "."]
        return self.numeric(id, "update", f"{name.plain}'", prompt, step.updated[p], f"{name.plain}'")

    def _biases(self) -> set[Symbol]:
        return {b for layer in self.sol.network.biases for b in layer}

    def formula(self, id: str, ask: Ask) -> Question:
        pool = formula_pool(self.sol, ask.target)
        if not pool:
            raise Degenerate(f"a formula question about a parameter whose gradient has no piecewise factor "
                             f"(leaky ReLU) and fits in {MAX_FORMULA} characters")
        p = self.pick(pool, lambda p: f"formula dE/d{self.name(p).plain}", "formula")
        m = self.gradient_math(p)
        found = _cached("options", self.sol, p, lambda: self.formula_options(p))
        prompt = ["Write ", m, " as a formula in the inputs, targets, weights and the values of the forward "
                  "pass (no numbers)."]
        if self.sol.spec.samples > 1:
            prompt += [" Write the sum over the samples as ", Math(r"\sum_{n}", "sum(…)"), " (typed sum(…))."]
        right = found[0]
        return Question(id, "formula", m.plain, tuple(prompt), right.plain, right.plain, right.latex, None, found)

    def formula_options(self, p: Symbol) -> tuple[Option, ...]:
        """The right formula and up to DISTRACTORS typical mistakes, each a different function."""
        right = gradient_formula(self.sol, p)
        found = [(self.formula_option(right, None), right)]
        for label, wrong in mistakes(self.sol, p):
            wrong = sp.factor_terms(wrong)
            if typeable(wrong) and all(sp.expand(wrong - f) != 0 for _, f in found):
                found.append((self.formula_option(wrong, label), wrong))
        return tuple(o for o, _ in found[:DISTRACTORS + 1])

    def formula_option(self, formula: Expr, mistake: str | None) -> Option:
        """A formula as typed and printed; with a batch, summed over the samples (sum(…) in the claim syntax)."""
        text, latex = formula_text(formula), self.tex(formula)
        if self.sol.spec.samples > 1:
            text, latex = f"sum({text})", rf"\sum_{{n=1}}^{{{self.sol.spec.samples}}} \left({latex}\right)"
        return Option(text, latex, None, mistake)

    def tex(self, expr: Expr) -> str:
        from .latex import tex

        return tex(expr, {s: n.latex for s, n in self.d.names.items()})

    def shape(self, id: str, ask: Ask) -> Question:
        spec = self.sol.spec
        options = shape_pool(spec, ask.target)
        fresh = [o for o in options if f"shape {o}" not in self.used] or options
        kind, l = self.rng.choice(fresh)
        self.used.add(f"shape {(kind, l)}")
        rows, cols = matrix_shape(spec, kind, l)
        symbol_latex, symbol_plain = _matrix_name(kind, l, spec.convention == "row")
        context, displays = matrix_form(spec)
        prompt = ["What is the shape (rows × columns) of ", Math(symbol_latex, symbol_plain), "?"]
        display = f"{rows}x{cols}"
        return Question(id, "shape", f"shape({symbol_plain})", tuple(prompt), display, display,
                        rf"{rows} \times {cols}", None, (), context, displays)

    def choice(self, id: str, ask: Ask) -> Question:
        p = self.pick(parameter_pool(self.sol, ask.target), lambda p: f"dE/d{self.name(p).plain}", "choice")
        m = self.gradient_math(p)
        value = self.sol.training.first.gradient[p]
        right = self.numeric(id, "choice", m.plain, [], value, m.plain)
        chosen = [Option(right.display, right.display, right.answer, None)]
        candidates = []
        for label, formula in mistakes(self.sol, p):
            wrong = _value(self.sol, formula)
            if not significant(wrong, self.cfg.decimals):
                continue                  # a distractor of 0.0000 gives the answer away
            display = fixed(wrong, self.cfg.decimals)
            w = float(display)
            if all(apart(self.cfg, w, o.value) for o in chosen + candidates):
                candidates.append(Option(display, display, w, label))
        if len(candidates) < DISTRACTORS:
            raise Degenerate(f"{DISTRACTORS} distractors for {m.plain} that differ from the answer and from each "
                             f"other by more than the tolerance (found {len(candidates)})")
        picked = sorted(self.rng.sample(range(min(len(candidates), DISTRACTORS + 1)), DISTRACTORS))
        options = chosen + [candidates[i] for i in picked]
        self.rng.shuffle(options)
        prompt = ["Which of these values is ", m, "? Choose one."]
        return Question(id, "choice", m.plain, tuple(prompt), right.answer, right.display, right.latex,
                        right.tolerance, tuple(options))


def _short(value: Expr) -> str:
    from .latex import number

    return number(value).plain


def matrix_shape(spec: Spec, kind: str, l: int) -> tuple[int, int]:
    """The shape of a matrix of the batch matrix form, found by multiplying matrices of those sizes."""
    n, N = spec.layers, spec.samples
    row = spec.convention == "row"

    def W(m):   # the weight matrix of layer m as the spec writes it
        return sp.zeros(n[m - 1], n[m]) if row else sp.zeros(n[m], n[m - 1])

    def A(m):   # the activations of layer m (A0 = X), one sample per column (row: per row)
        return sp.zeros(N, n[m]) if row else sp.zeros(n[m], N)

    def delta(m):
        return A(m)

    matrix = {
        "delta": lambda: delta(l),
        "dW": lambda: A(l - 1).T * delta(l) if row else delta(l) * A(l - 1).T,
        "WT": lambda: W(l).T,
        "AT": lambda: A(l).T,
        "WTdelta": lambda: delta(l) * W(l).T if row else W(l).T * delta(l),
    }[kind]()
    return matrix.shape


def _matrix_name(kind: str, l: int, row: bool) -> tuple[str, str]:
    """The LaTeX and plain names of a matrix of the matrix form (the worked solution's Δ, W, A)."""
    if kind == "WTdelta" and not row:
        return rf"W^{{({l})\mathsf{{T}}}} \Delta^{{({l})}}", f"W{l}T Delta{l}"
    return {
        "delta": (rf"\Delta^{{({l})}}", f"Delta{l}"),
        "dW": (rf"\frac{{\partial E}}{{\partial W^{{({l})}}}}", f"dE/dW{l}"),
        "WT": (rf"W^{{({l})\mathsf{{T}}}}", f"W{l}T"),
        "AT": (rf"A^{{({l})\mathsf{{T}}}}", f"A{l}T"),
        "WTdelta": (rf"\Delta^{{({l})}} W^{{({l})\mathsf{{T}}}}", f"Delta{l} W{l}T"),
    }[kind]


def _layer_range(L: int) -> str:
    return "l = 1" if L == 1 else "l = 1, 2" if L == 2 else rf"l = 1, \dots, {L}"


def matrix_form(spec: Spec) -> tuple[tuple[str | Math, ...], tuple[str, ...]]:
    """The batch matrix form of backpropagation in the spec's convention: a sentence and its displays."""
    N, L = spec.samples, spec.depth
    where = "rows" if spec.convention == "row" else "columns"
    intro = ("Stack the ", Math(f"N = {N}", f"N = {N}"), f" sample{'s' if N > 1 else ''} as the {where} of ",
             Math(r"A^{(0)} = X", "A0 = X"), ". For ", Math(_layer_range(L), f"l = 1, ..., {L}"),
             ", the forward and the backward pass read")
    if spec.convention == "row":
        displays = (r"Z^{(l)} = A^{(l-1)} W^{(l)} + b^{(l)}, \qquad A^{(l)} = f\left(Z^{(l)}\right),",
                    r"\Delta^{(l)} = \frac{\partial E}{\partial Z^{(l)}}, \qquad "
                    r"\frac{\partial E}{\partial W^{(l)}} = A^{(l-1)\mathsf{T}} \Delta^{(l)},",
                    r"\Delta^{(l-1)} = \left(\Delta^{(l)} W^{(l)\mathsf{T}}\right) \odot f'\left(Z^{(l-1)}\right).")
    else:
        displays = (r"Z^{(l)} = W^{(l)} A^{(l-1)} + b^{(l)}, \qquad A^{(l)} = f\left(Z^{(l)}\right),",
                    r"\Delta^{(l)} = \frac{\partial E}{\partial Z^{(l)}}, \qquad "
                    r"\frac{\partial E}{\partial W^{(l)}} = \Delta^{(l)} A^{(l-1)\mathsf{T}},",
                    r"\Delta^{(l-1)} = \left(W^{(l)\mathsf{T}} \Delta^{(l)}\right) \odot f'\left(Z^{(l-1)}\right).")
    return intro, displays


# -- one variant: draw, screen, solve, ask, verify -----------------------------------------------

def ask_all(sol: Solution, cfg: ExamConfig, rng: random.Random) -> tuple[Question, ...]:
    """The questions of one variant, in the order of [exam].questions, ids q1, q2, …"""
    asker = Asker(sol, cfg, rng)
    return tuple(getattr(asker, ask.kind)(f"q{i}", ask) for i, ask in enumerate(cfg.questions, 1))


def verify(sol: Solution, questions: Sequence[Question]) -> None:
    """Every answer holds for `derive check`, and no distractor does; a failure is a bug, never written."""
    from .check import check_claim

    for q in questions:
        if q.kind == "shape":
            continue                      # no claim syntax for shapes: matrix_shape multiplies real matrices
        claims = [(f"{q.quantity} = {q.display}", True)]
        claims += [(f"{q.quantity} = {o.plain}", False) for o in q.options if o.mistake]
        for claim, expected in claims:
            verdict = check_claim(sol, claim)
            if verdict.holds is not expected:
                raise RuntimeError(f"derive check {'rejects' if expected else 'accepts'} the exam's "
                                   f"{'answer' if expected else 'distractor'} {claim!r} for {sol.spec.source}: "
                                   f"{getattr(verdict, 'diagnosis', None)}")


def make_variant(template: Spec, cfg: ExamConfig, exam_seed: int, number: int, retry: int = 0) -> Variant:
    """Variant ``number``: draws from its own seed until one meets every constraint (or ExamError)."""
    seed = variant_seed(exam_seed, number, retry)
    rng = random.Random(seed)
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    solved = 0
    source = f"{_base(template.source)} variant {number}"
    for _ in range(cfg.tries):
        raw = draw(template, cfg, rng)
        try:
            spec = build_spec(raw, source)
        except SpecError as exc:              # a value set that the spec refuses (e.g. a target out of range)
            reason = f"a valid spec ({exc})"
        else:
            sol = Solution(spec)
            reason = degenerate(spec, lambda l, j: sol.network.names[sol.network.activations[l][j]].plain)
            if reason is None and solved < EXACT_TRIES:
                solved += 1
                try:
                    questions = ask_all(sol, cfg, rng)
                except Degenerate as exc:
                    reason = str(exc)
                else:
                    verify(sol, questions)
                    return Variant(number, seed, raw, questions)
            elif reason is None:          # enough exact solves: this draw counts for the commonest failure
                reason = examples[max(failures, key=failures.get)] if failures else "no degenerate answer"
        constraint = reason.split(" (")[0]            # the constraint; the parenthesis is this draw's example
        failures[constraint] = failures.get(constraint, 0) + 1
        examples[constraint] = reason
    worst = max(failures, key=failures.get)
    raise ExamError(f"{_base(template.source)}: [exam]: no acceptable variant {number} in {cfg.tries} draws "
                    f"(seed {seed}); the constraint that failed most ({failures[worst]} times): {examples[worst]}. "
                    f"Widen the value ranges of [exam] or choose other questions")


def _base(source: str) -> str:
    """A spec's name without its directory, so that no absolute path reaches a document."""
    return source.replace("\\", "/").rsplit("/", 1)[-1]


# -- the whole exam: variants in parallel, deterministic -------------------------------------------

MAX_VARIANTS = 10_000


@dataclass(frozen=True)
class Exam:
    """Every generated variant of one template spec, in order."""

    template: Spec
    cfg: ExamConfig
    seed: int
    count: int                   # --variants: how many the exam has (``variants`` may hold only one)
    variants: tuple[Variant, ...]

    @property
    def name(self) -> str:
        """The template's name as a user types it (file name or example name, no directory)."""
        return _base(self.template.source)

    def command(self, variant: int) -> str:
        """The command line that regenerates one variant alone."""
        return f"derive exam {self.name} --variants {self.count} --seed {self.seed} --only {variant}"

    def json(self) -> list[dict[str, Any]]:
        """answers.json: one object per variant with its number, seed, complete spec and questions."""
        return [{"variant": v.number, "seed": v.seed, "exam_seed": self.seed, "spec": v.raw,
                 "questions": [q.json() for q in v.questions]} for v in self.variants]


def prepare(template: Spec) -> ExamConfig:
    """The [exam] table of a template, checked against its network; default questions fitted to it."""
    cfg = config(template)
    sol = Solution(template)
    validate_targets(sol, cfg)
    if len(cfg.activations) == 1 and cfg.asked:
        for ask in cfg.questions:
            if ask.kind == "formula" and not formula_pool(sol, ask.target):
                raise SpecError(template.source, "[exam].questions",
                                f"formula{':' + ask.target if ask.target else ''}: no gradient of this network fits a "
                                f"formula question (typeable without piecewise factors, at most {MAX_FORMULA} "
                                f"characters); ask about another layer or drop it")
    if not cfg.asked and len(cfg.activations) == 1:
        # the default formula question moves to the output layer, or goes, when layer 1's formulas are unwieldy
        asks = []
        for ask in cfg.questions:
            if ask.kind == "formula" and not formula_pool(sol, ask.target):
                last = f"W{template.depth}"
                if not formula_pool(sol, last):
                    continue
                ask = Ask("formula", last)
            asks.append(ask)
        cfg = _replace(cfg, questions=tuple(asks))
    return cfg


def _replace(cfg: ExamConfig, **changes: Any) -> ExamConfig:
    from dataclasses import replace

    return replace(cfg, **changes)


_STATE: dict[str, Any] = {}


def _init(template: Spec, cfg: ExamConfig, seed: int) -> None:
    _STATE.update(template=template, cfg=cfg, seed=seed)


def _work(number: int) -> Variant | ExamError:
    try:
        return make_variant(_STATE["template"], _STATE["cfg"], _STATE["seed"], number)
    except ExamError as exc:
        return exc


def _parallel(function: Callable, items: Sequence, jobs: int, initializer: Callable, initargs: tuple,
              progress: Callable[[int, int], None] | None) -> Iterable:
    """``function`` over ``items`` in order, on ``jobs`` processes; the results do not depend on ``jobs``."""
    import multiprocessing

    total = len(items)
    if jobs <= 1 or total < 4:
        initializer(*initargs)
        for i, item in enumerate(items, 1):
            yield function(item)
            if progress:
                progress(i, total)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(jobs, initializer=initializer, initargs=initargs) as pool:
        for i, result in enumerate(pool.imap(function, items, chunksize=1), 1):
            yield result
            if progress:
                progress(i, total)


def default_jobs() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def generate(spec: Spec, variants: int = 1, seed: int = 0, only: int | None = None, jobs: int | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> Exam:
    """``variants`` verified exam variants of a template spec (or only variant ``only``).

    Variant k is drawn from its own seed, a hash of (seed, k); one that comes out like an
    earlier variant is drawn again from the next hash. So the result depends on the arguments
    only, never on the number of processes, and ``only=k`` reproduces variant k of the full run.

    >>> exam = generate(load("linear-221"), variants=2, seed=1)
    >>> [v.number for v in exam.variants]
    [1, 2]
    """
    if not 1 <= variants <= MAX_VARIANTS:
        raise ExamError(f"--variants: expected a whole number from 1 to {MAX_VARIANTS}; got {variants}")
    if only is not None and not 1 <= only <= variants:
        raise ExamError(f"--only: expected a variant number from 1 to {variants}; got {only}")
    cfg = prepare(spec)
    last = only or variants
    jobs = default_jobs() if jobs is None else jobs
    report = (lambda done, total: progress("drawing", done + 1, total + 1)) if progress else None
    drawn = [make_variant(spec, cfg, seed, 1)]          # in this process first: a hopeless [exam] fails fast
    for result in _parallel(_work, list(range(2, last + 1)), jobs, _init, (spec, cfg, seed), report):
        if isinstance(result, ExamError):
            raise ExamError(str(result))
        drawn.append(result)
    kept: list[Variant] = []
    seen: set = set()
    for variant in drawn:
        retry = 0
        while _alike(variant, seen):
            retry += 1
            if retry > MAX_RETRIES:
                raise ExamError(f"{_base(spec.source)}: [exam]: no two variants alike: variant {variant.number} "
                                f"came out like an earlier one in {MAX_RETRIES} draws; the value sets of [exam] "
                                f"allow too few different variants for --variants {variants}")
            variant = make_variant(spec, cfg, seed, variant.number, retry)
        seen.update(_keys(variant))
        kept.append(variant)
    chosen = tuple(v for v in kept if only is None or v.number == only)
    return Exam(spec, cfg, seed, variants, chosen)


def _keys(variant: Variant) -> tuple:
    data, answers = variant.fingerprint()
    return ("spec", data), ("answers", answers)


def _alike(variant: Variant, seen: set) -> bool:
    return any(key in seen for key in _keys(variant))


# -- documents: the data every sheet and key shows ------------------------------------------------

ACTIVATION_DEFINITIONS = {
    "sigmoid": r"\sigma(z) = \frac{1}{1 + e^{-z}}",
    "tanh": r"\tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}",
    "relu": r"\operatorname{ReLU}(z) = \max(0, z)",
    "softplus": r"\operatorname{softplus}(z) = \ln\left(1 + e^{z}\right)",
}


@dataclass(frozen=True)
class Line:
    """One row of the network's equations: a unit's net input and its activation."""

    z: str
    z_rhs: str
    a: str
    a_rhs: str


@dataclass(frozen=True)
class Parameter:
    latex: str
    plain: str
    edge: Math                   # where it sits: x_1 → h_1, or the unit(s) it shifts
    value: str                   # LaTeX of the initial value


@dataclass(frozen=True)
class Sheet:
    """Everything one variant's question sheet and answer key show; user text unescaped (templates escape it)."""

    title: str
    intro: str
    number: int
    count: int
    seed: int
    exam_seed: int
    command: str
    decimals: int
    tolerance: str
    setup: tuple[str | Math, ...]
    training: tuple[str | Math, ...]
    functions: tuple[str, ...]
    lines: tuple[Line, ...]
    loss: str
    data_header: tuple[str, ...]
    data: tuple[tuple[str, ...], ...]
    parameters: tuple[Parameter, ...]
    questions: tuple[Question, ...]
    spec_file: str               # the variant's spec beside the sheet: variant-07.toml
    solution: str | None = None  # the full worked solution (keys only); in LaTeX its document body
    preamble: str | None = None  # LaTeX keys: the worked solution's preamble, which the key adopts


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def setup_text(sol: Solution) -> tuple[str | Math, ...]:
    """The network in words, with its learning rate; the equations below make it exact."""
    spec = sol.spec
    hidden = [f"{spec.layers[l + 1]} {spec.activations[l].replace('_', ' ')}" for l in range(spec.depth - 1)]
    layers = (f"a hidden layer of {hidden[0]} units" if len(hidden) == 1 else
              "hidden layers of " + ", ".join(hidden) + " units" if hidden else "no hidden layer")
    out_act = spec.activations[-1].replace("_", " ")
    outputs = f"{_count(spec.layers[-1], out_act + ' output unit')}"
    bias = {"none": "It has no biases.", "neuron": "Every unit has its own bias.",
            "shared": "Each layer has one bias shared by all its units."}[spec.bias]
    segments: list[str | Math] = [f"The network has {_count(spec.layers[0], 'input')}, {layers} and {outputs}. "
                                  f"{bias} It computes, for each sample,"]
    return tuple(segments)


def training_text(sol: Solution) -> tuple[str | Math, ...]:
    """The learning rate, and which parameters gradient descent leaves alone."""
    from .latex import number

    rate = number(sol.spec.learning_rate)
    out: list[str | Math] = ["It is trained by gradient descent with learning rate ",
                             Math(rf"\eta = {rate.tex}", f"eta = {rate.plain}")]
    fixed_ = [p for p in sol.network.parameters if p not in _trainable(sol)]
    if fixed_:
        names = [sol.network.names[p] for p in fixed_]
        out += ["; ", Math(", ".join(n.latex for n in names), ", ".join(n.plain for n in names)),
                " stay fixed" if len(names) > 1 else " stays fixed"]
    out.append(".")
    return tuple(out)


def _trainable(sol: Solution) -> set[Symbol]:
    return set(parameter_pool(sol, None, trainable=True))


def loss_latex(spec: Spec) -> str:
    """The loss of this network over its batch, with the constant in front written out."""
    from .activations import LOSSES

    rule = LOSSES[spec.loss]
    N, J = spec.samples, spec.layers[-1]
    scale = rule.scale(N, J)
    term = rule.term_latex
    sums = ""
    if N > 1:
        sums += rf"\sum_{{n=1}}^{{{N}}} "
    else:
        term = term.replace("_{nj}", "_{j}")
    if J > 1:
        sums += rf"\sum_{{j=1}}^{{{J}}} "
    else:
        term = term.replace("_{nj}", "_{n}").replace("_{j}", "")
    front = {1: "", -1: "-"}.get(scale, sp.latex(scale) + " ")
    return f"E = {front}{sums}{term}"


def sheet(exam: Exam, variant: Variant, sol: Solution, solution_text: str | None = None) -> Sheet:
    """The sheet of one variant, built from its solved spec."""
    from .latex import number, tex

    spec, net, cfg = sol.spec, sol.network, exam.cfg
    names = {s: n.latex for s, n in net.names.items()}
    lines = []
    for l in range(spec.depth):
        for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])):
            lines.append(Line(names[z], tex(net.definitions[z], names), names[a], tex(net.definitions[a], names)))
    functions = tuple(dict.fromkeys(ACTIVATION_DEFINITIONS[a] for a in spec.activations if a in ACTIVATION_DEFINITIONS))
    if "leaky_relu" in spec.activations:
        functions += (rf"\operatorname{{LReLU}}(z) = z \text{{ for }} z > 0 \text{{, else }} {number(spec.slope).tex}\,z",)
    header = tuple(names[s] for s in net.inputs + net.targets)
    data = tuple(tuple(number(v).tex for v in x + y) for x, y in zip(spec.x, spec.y))
    values = sol.training.first.parameters
    parameters = tuple(Parameter(names[p], net.names[p].plain, _edge(sol, p), number(values[p]).tex)
                       for p in net.parameters)
    floor = format(Decimal(5).scaleb(-cfg.decimals - 1), "f")
    tol = (f"{float(cfg.tolerance) * 100:g}% of the right value (at least {floor})" if cfg.relative
           else format(Decimal(str(cfg.tolerance_for(1.0))), "f"))
    return Sheet(cfg.title, cfg.intro, variant.number, exam.count, variant.seed, exam.seed,
                 exam.command(variant.number), cfg.decimals, tol, setup_text(sol), training_text(sol), functions, tuple(lines),
                 loss_latex(spec), header, data, parameters, variant.questions,
                 f"variant-{_stem(exam, variant.number)}.toml", solution_text)


def _edge(sol: Solution, p: Symbol) -> Math:
    """Where a parameter sits: ``x_1 → h_1`` for a weight, the unit(s) it shifts for a bias."""
    net = sol.network
    n = net.names
    for l, layer in enumerate(net.weights):
        for j, row in enumerate(layer):
            if p in row:
                k = row.index(p)
                src, dst = n[net.layer_input(l)[k]], n[net.activations[l][j]]
                return Math(rf"{src.latex} \to {dst.latex}", f"{src.plain} -> {dst.plain}")
    units = [net.activations[l][j] for l, layer in enumerate(net.biases) for j, b in enumerate(layer) if b == p]
    if len(units) > 2:                # a shared bias: name the layer, not every unit
        layer = next(l for l, layer in enumerate(net.biases) if p in layer) + 1
        return Math(rf"\to \text{{layer {layer}}}", f"-> layer {layer}")
    return Math(r"\to " + ", ".join(n[u].latex for u in units), "-> " + ", ".join(n[u].plain for u in units))


# -- rendering ---------------------------------------------------------------------------------------

def _is_math(value: Any) -> bool:
    return isinstance(value, Math)


def _spaced(escape: Callable[[str], str]) -> Callable[[str], str]:
    """An escaping filter that keeps the text's outer spaces (prompts run into formulas)."""

    def run(text: str) -> str:
        core = text.strip()
        if not core:
            return " " if text else ""
        return (" " if text[0].isspace() else "") + escape(core) + (" " if text[-1].isspace() else "")

    return run


def _words(fmt: str) -> Callable[[str], str]:
    """Our own sentences between formulas: escaped for the format, spaces kept, no line-start rules."""
    from .latex import escape_latex, markdown_chars
    from .moodle import html_text

    if fmt == "tex":
        return _spaced(escape_latex)
    if fmt == "md":
        return markdown_chars
    return html_text


@lru_cache(maxsize=None)
def environment(fmt: str, template_dir: str | None = None):
    """render.py's Jinja environment for ``fmt`` (tex, md, xml) with the exam's filters and the ``math`` test.

    Kept for the whole run: Jinja compiles each template once per environment, and an exam
    renders the same templates for every variant.
    """
    from .latex import escape_latex
    from .moodle import cloze, html_text, math_html
    from .render import environment as shared

    env = shared(fmt, template_dir)
    env.tests["math"] = _is_math
    env.filters.update(tex=_spaced(escape_latex), words=_words(fmt), html=html_text, mathhtml=math_html,
                       cloze=cloze)
    return env


def render(fmt: str, name: str, template_dir: str | None = None, **context: Any) -> str:
    """One exam template rendered; a broken or missing template is a one-line RenderError."""
    from .render import render_template

    return render_template(environment(fmt, template_dir), name, **context)


# -- files -------------------------------------------------------------------------------------------

FORMATS = ("tex", "md", "moodle", "pdf")
DEFAULT_FORMATS = ("tex", "md", "moodle")


@dataclass(frozen=True)
class Options:
    """How the files are written: formats, the worked solutions' precision, the user's templates."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    precision: int = 6
    template_dir: str | None = None


def _stem(exam: Exam, number: int) -> str:
    return str(number).rjust(max(2, len(str(exam.count))), "0")


@lru_cache(maxsize=None)
def _solution_environment(fmt: str, template_dir: str | None):
    from .render import environment as shared

    return shared(fmt, template_dir)


def worked_solutions(sol: Solution, formats: Sequence[str], opts: Options) -> dict[str, str]:
    """The full worked solution in each format: what render_solution writes, from one document model
    and one (cached) environment per format."""
    from .render import TEMPLATES, document, render_template

    doc = document(sol, opts.precision)
    return {fmt: render_template(_solution_environment(fmt, opts.template_dir), TEMPLATES[fmt], doc=doc, assets=None)
            for fmt in formats}


def variant_files(exam: Exam, variant: Variant, opts: Options) -> tuple[Sheet, dict[str, str]]:
    """One variant's own files: its spec as TOML, its question sheet and its answer key."""
    from .variants import toml_text

    stem = _stem(exam, variant.number)
    sol = Solution(build_spec(variant.raw, f"variant-{stem}.toml"))
    files = {f"variant-{stem}.toml": toml_text(variant.raw)}
    base = sheet(exam, variant, sol)
    formats = [fmt for fmt in ("tex", "md") if fmt in opts.formats or (fmt == "tex" and "pdf" in opts.formats)]
    solutions = worked_solutions(sol, formats, opts) if formats else {}
    for fmt in formats:
        files[f"sheet-{stem}.{fmt}"] = render(fmt, f"exam.sheet.{fmt}.j2", opts.template_dir, sheets=[base])
        keyed = _with_solution(base, solutions[fmt], fmt)
        files[f"key-{stem}.{fmt}"] = render(fmt, f"exam.key.{fmt}.j2", opts.template_dir, sheet=keyed)
    return base, files


def _with_solution(base: Sheet, text: str, fmt: str) -> Sheet:
    """The key's sheet: with the worked solution, a LaTeX one split into its preamble and its body."""
    from dataclasses import replace

    if fmt != "tex":
        return replace(base, solution=text)
    preamble, begin, rest = text.partition("\\begin{document}")
    body, end, _ = rest.rpartition("\\end{document}")
    if not begin or not end:
        raise ExamError("the worked solution's LaTeX has no \\begin{document} … \\end{document}: "
                        "check --template-dir's solution.tex.j2")
    return replace(base, solution=body.strip("\n") + "\n", preamble=preamble.rstrip("\n") + "\n")


def _render_one(variant: Variant) -> tuple[Sheet, dict[str, str]]:
    return variant_files(_STATE["exam"], variant, _STATE["options"])


def _init_render(exam: Exam, opts: Options) -> None:
    _STATE.update(exam=exam, options=opts)


def json_text(value: Any, indent: str = "") -> str:
    """JSON with two-space indentation, but lists of numbers and strings on one line (matrices stay readable)."""
    import json

    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {json_text(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        if all(isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v) for v in value):
            return "[" + ", ".join(json_text(v) for v in value) + "]"      # a matrix on one line
        return "[\n" + ",\n".join(inner + json_text(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def documents(exam: Exam, opts: Options = Options(), jobs: int | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> dict[str, str]:
    """Every file of the exam by name: answers.json, per variant its spec, sheet and key, sheets, Moodle XML."""
    files: dict[str, str] = {"answers.json": json_text(exam.json()) + "\n"}
    jobs = default_jobs() if jobs is None else jobs
    report = (lambda done, total: progress("writing", done, total)) if progress else None
    sheets = []
    for base, own in _parallel(_render_one, list(exam.variants), jobs, _init_render, (exam, opts), report):
        sheets.append(base)
        files.update(own)
    if "tex" in opts.formats or "pdf" in opts.formats:
        files["sheets.tex"] = render("tex", "exam.sheet.tex.j2", opts.template_dir, sheets=sheets)
    if "moodle" in opts.formats:
        files["moodle.xml"] = moodle_xml(exam, sheets, opts)
    return dict(sorted(files.items()))


def moodle_xml(exam: Exam, sheets: Sequence[Sheet], opts: Options) -> str:
    """The Moodle XML file: a category for the exam, one Cloze question per variant."""
    title = exam.cfg.title.replace("/", "-")           # a slash would open a sub-category
    return render("xml", "exam.moodle.xml.j2", opts.template_dir,
        sheets=sheets, category=f"$course$/top/derive exam/{title}",
        info=f"{len(sheets)} variant(s) of {exam.name}, exam seed {exam.seed}, made by derive exam.",
        idprefix=f"derive-{exam.seed}")


def write(files: dict[str, str | bytes], out: str, replace: bool = True) -> None:
    """Write every file into DIR at once: built in a temporary directory beside it, then moved in.

    With ``replace``, the files of an earlier exam in DIR that this one does not write (key-37.md
    after a run of 30 variants) are removed, so DIR holds one exam; other files stay.
    """
    import os
    import shutil
    import tempfile
    from pathlib import Path

    target = Path(out)
    if target.exists() and not target.is_dir():
        raise ExamError(f"--out {out}: exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        if not target.exists():
            os.rename(tmp, target)
            return
        for name in files:
            os.replace(tmp / name, target / name)
        tmp.rmdir()
        if replace:
            for stale in sorted(target.iterdir()):
                if EXAM_FILE.fullmatch(stale.name) and stale.name not in files and stale.is_file():
                    stale.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# -- the command line: derive exam SPEC --variants N --seed S --out DIR ------------------------------

def _formats(text: str) -> tuple[str, ...]:
    import argparse

    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(FORMATS)}; got {text!r}")
    return chosen


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return value


class Progress:
    """Progress on standard error for long runs: a rewritten line on a terminal, else every tenth."""

    def __init__(self, stream, minimum: int = 10):
        self.stream, self.minimum, self.last = stream, minimum, -1
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total < self.minimum:
            return
        if self.tty:
            end = "\n" if done == total else ""
            print(f"\rderive exam: {stage} {done}/{total}", end=end, file=self.stream, flush=True)
        elif done == total or done * 10 // total != self.last:
            self.last = done * 10 // total
            print(f"derive exam: {stage} {done}/{total}", file=self.stream, flush=True)


def cmd_exam(args) -> int:
    import sys

    from .spec import load

    template = load(args.spec)
    progress = Progress(sys.stderr)
    exam = generate(template, args.variants, args.seed, only=args.only, jobs=args.jobs, progress=progress)
    opts = Options(args.format, args.precision, args.template_dir)
    files = documents(exam, opts, jobs=args.jobs, progress=progress)
    if args.only:       # the variant's own files only: the folder of the full run keeps its answers.json
        files = {name: data for name, data in files.items() if VARIANT_FILE.fullmatch(name)}
    if "pdf" in opts.formats:
        files.update(pdfs(files, args.jobs))
    write(files, args.out, replace=not args.only)
    print(f"wrote {len(files)} files for {len(exam.variants)} variant(s) into {args.out}", file=sys.stderr)
    return 0


VARIANT_FILE = re.compile(r"(variant|sheet|key)-\d+\.(toml|md|tex|pdf)")
EXAM_FILE = re.compile(rf"{VARIANT_FILE.pattern}|sheets\.(tex|pdf)|answers\.json|moodle\.xml")


def pdfs(files: dict[str, str], jobs: int | None = None) -> dict[str, bytes]:
    """The PDF of every LaTeX file (sheets.tex, each sheet and key), with render.py's TeX runner, TeX runs in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from .render import build_pdf

    names = [name for name in files if name.endswith(".tex")]
    with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:     # each run is a pdflatex process
        built = list(pool.map(lambda name: build_pdf(files[name], name[:-4]), names))
    return {name[:-4] + ".pdf": pdf for name, pdf in zip(names, built)}


def register(subparsers) -> None:
    """Add ``derive exam`` to the command line."""
    p = subparsers.add_parser(
        "exam", help="randomized exam variants with answer keys (LaTeX, Markdown, Moodle XML, answers.json)",
        description="Write N verified variants of the exercise SPEC into DIR: per variant its spec (variant-K.toml), "
                    "question sheet and answer key with the worked solution; all sheets in sheets.tex; every variant "
                    "as a Moodle Cloze question in moodle.xml; every answer in answers.json. What varies and which "
                    "questions are asked comes from the spec's [exam] table.")
    p.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name: the template")
    p.add_argument("--variants", type=_positive, default=1, metavar="N", help="how many variants (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="the exam's seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (made if missing)")
    p.add_argument("--format", type=_formats, default=DEFAULT_FORMATS, metavar="LIST",
                   help=f"comma-separated, of {', '.join(FORMATS)} (default {','.join(DEFAULT_FORMATS)}); "
                        f"answers.json and the variants' specs are always written")
    p.add_argument("--only", type=_positive, metavar="K",
                   help="write only variant K, exactly as the full run of the same arguments makes it")
    p.add_argument("--jobs", type=_positive, metavar="J", help="processes to use (default: every core)")
    p.add_argument("--precision", type=_positive, default=6, metavar="P",
                   help="significant digits in the keys' worked solutions (default 6)")
    p.add_argument("--template-dir", metavar="DIR", help="templates that override the built-in ones")
    p.set_defaults(run=cmd_exam)
