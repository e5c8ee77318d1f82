"""One exam variant's questions as data: the quantities they ask about, typical mistakes, asking and verifying."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any, Callable, Iterable, Sequence, overload

import sympy as sp
from sympy import Expr, Symbol

from derive.check import mistakes as catalogue
from derive.check.mistakes import MEAN_DROPPED, UPDATE_SLIPS, gradient_mistakes, loss_mistakes
from derive.check.verdict import check_claim
from derive.derived.solution import Solution
from derive.numeric.rule import N, mean_ratio
from derive.errors import SpecError
from derive.exam.variants import MAX_DECIMALS, Ask, ExamConfig
from derive.model.convention import Convention
from derive.model.plain import plain as plain_formula
from derive.model.spec import Spec
from derive.numeric.rounding import Number, fixed, number, short
from derive.numeric.rule import learning_rates
from derive.numeric.values import exact
from derive.text.printer import tex

DISTRACTORS = 3             # wrong options of a multiple-choice question
MAX_FORMULA = 160           # characters of a formula a student is asked to write down
STEP_SHARE = 4              # an update's tolerance is at most this share of its step η·|∂E/∂p|
EXTRA_DECIMALS = 2          # an update with a small step may ask this many decimals beyond the exam's


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
class Carried:
    """Error carried forward: the new value that follows from a student's own answer g to an earlier gradient
    question, p′ = intercept − rate·g (the intercept is p less the weight decay's step η·λp)."""

    source: str                  # the gradient question's id: q4
    position: int                # its number on the sheet, from 1
    intercept: Number
    rate: Number
    target: str = "p'"           # p′ in LaTeX

    @property
    def plain(self) -> str:
        """p′ in the student's answer g to the gradient question: ``0.15 - 0.5*g``."""
        return f"{self.intercept.plain} - {self.rate.plain}*g"

    @property
    def latex(self) -> str:
        return rf"{self.target} = {self.intercept.tex} - {self.rate.factor}\,g"

    def json(self) -> dict[str, Any]:
        return {"from": self.source, "intercept": float(self.intercept.plain), "rate": float(self.rate.plain),
                "formula": self.plain}


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
    displays_plain: tuple[str, ...] = () # the same as plain text (Blackboard)
    mistakes: tuple[Option, ...] = ()    # a numerical question: the values typical mistakes give, for LMS feedback
    points: int = 1                      # [exam].points: what the question is worth
    partial: int = 0                     # [exam].partial_credit: percent of the points a typical mistake earns
    carried: Carried | None = None       # [exam].carry_forward: an update's answer from the student's own gradient

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
                               "answer": self.answer, "display": self.display, "tolerance": self.tolerance,
                               "points": self.points}
        if self.partial:
            out["partial_credit"] = self.partial
        if self.kind == "choice":
            out["options"] = [o.value for o in self.options]
            out["correct"] = self.letter
            out["distractors"] = [{"value": o.value, "display": o.plain, "mistake": o.mistake}
                                  for o in self.options if o.mistake]
        elif self.options:
            out["distractors"] = [{"formula": o.plain, "mistake": o.mistake} for o in self.options if o.mistake]
        if self.mistakes:
            out["mistakes"] = [{"value": o.value, "display": o.plain, "mistake": o.mistake} for o in self.mistakes]
        if self.carried:
            out["carried_forward"] = self.carried.json()
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


@overload
def tolerance(cfg: ExamConfig, answer: float, cap: None = None, least: Decimal = ...,
              decimals: int | None = ...) -> float: ...
@overload
def tolerance(cfg: ExamConfig, answer: float, cap: Decimal | None, least: Decimal = ...,
              decimals: int | None = ...) -> float | None: ...
def tolerance(cfg: ExamConfig, answer: float, cap: Decimal | None = None, least: Decimal = Decimal(0),
              decimals: int | None = None) -> float | None:
    """The absolute tolerance of a numerical answer given to ``decimals`` places (default: the exam's),
    rounded up to one digit beyond the answer's.

    With ``cap`` it is at most ``cap`` (rounded down) and at least ``least`` (rounded up); None where the
    cap is below that or half a unit of the last decimal, so that a right answer could fail.
    """
    decimals = cfg.decimals if decimals is None else decimals
    unit = Decimal(1).scaleb(-(decimals + 1))
    tol = Decimal(repr(cfg.tolerance_for(answer, decimals))).quantize(unit, rounding=ROUND_CEILING)
    if cap is not None:
        cap = cap.quantize(unit, rounding=ROUND_FLOOR)
        least = max(5 * unit, least.quantize(unit, rounding=ROUND_CEILING))
        if cap < least:
            return None
        tol = max(least, min(tol, cap))
    return float(tol)


def same(a: Expr, b: Expr) -> bool:
    """Equal up to the noise of 60-digit arithmetic: a mistake that gives the right number is none for these data
    (only the path through o1 where y = (1, 0, 0) and the other outputs' paths are exactly 0)."""
    return abs(_decimal(a) - _decimal(b)) <= Decimal("1e-40") * max(Decimal(1), abs(_decimal(b)))


MAX_MISTAKES = 5            # typical wrong values a numerical question carries for the LMS's feedback


def _mistaken(display: str, value: Expr, wrong: Iterable[tuple[str, Expr]], places: int) -> tuple[Option, ...]:
    """The values typical mistakes give, as a student would round them: each once, none the answer itself."""
    out: dict[str, Option] = {}
    for label, w in wrong:
        if label == "the answer 0" or same(w, value) or sp.S(w).is_finite is False:
            continue
        shown = fixed(w, places)
        if shown != display and shown not in out and float(shown) != 0:
            out[shown] = Option(shown, shown, float(shown), label)
    return tuple(out.values())[:MAX_MISTAKES]


def accepted(answer: str, tol: float, value: Expr, decimals: int) -> bool:
    """Whether a value, exact or as a student rounds it to the asked decimals, lies within ``tol`` of the answer."""
    a, t = Decimal(answer), Decimal(repr(tol))
    return any(abs(v - a) <= t for v in (_decimal(value), Decimal(fixed(value, decimals))))


OPTION_GAP = 0.1            # two options of a choice differ by at least this share of the larger
OPTION_UNITS = 3            # and by at least this many units of the exam's last decimal


def apart(cfg: ExamConfig, a: float, b: float) -> bool:
    """Two options a student tells apart: twice outside each other's tolerance, 10 % and 3 units of the
    last decimal apart (0.0019 against 0.0020 is one unit: a rounding, not a different answer)."""
    gap = abs(a - b)
    unit = 10.0 ** -cfg.decimals
    return (gap > 2 * max(tolerance(cfg, a), tolerance(cfg, b)) and gap >= OPTION_GAP * max(abs(a), abs(b))
            and gap >= OPTION_UNITS * unit * (1 - 1e-9))


def halfway(value: Expr, decimals: int) -> bool:
    """Whether a value lies exactly halfway between two roundings at ``decimals`` places (0.00325 at 4)."""
    scaled = _decimal(value).scaleb(decimals)
    return abs(scaled - scaled.to_integral_value()) == Decimal("0.5")


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
    return [(mistake.label, mistake.formula) for mistake in gradient_mistakes(catalogue.model(sol), p)]


# -- building the questions of one variant ---------------------------------------------------------

@dataclass
class Asker:
    """Turns the [exam].questions list into the questions of one drawn variant."""

    sol: Solution
    cfg: ExamConfig
    rng: random.Random
    used: set[str] = field(default_factory=set)
    answers: set[str] = field(default_factory=set)      # the answers of the questions asked so far, as shown
    subjects: dict[str, Any] = field(default_factory=dict)     # each asked question's id: what it is about

    @property
    def d(self):
        return self.sol.derivation

    def name(self, s: Symbol):
        return self.d.names[s]

    def pool(self, ask: Ask) -> list:
        """What a question of this kind and target may be about: symbols, shape pairs, or [None] for the loss."""
        if ask.kind == "forward":
            return unit_pool(self.sol, ask.target)
        if ask.kind == "loss":
            return [None]
        if ask.kind == "shape":
            return shape_pool(self.sol.spec, ask.target)
        if ask.kind == "formula":
            return formula_pool(self.sol, ask.target)
        return parameter_pool(self.sol, ask.target, trainable=ask.kind == "update")

    def key(self, kind: str, s: Any) -> str:
        """The quantity a question asks: a gradient asked as a number, a formula or a choice is one quantity."""
        if kind == "loss":
            return "E"
        if kind == "shape":
            return f"shape {s}"
        plain = self.name(s).plain
        return {"forward": plain, "update": f"{plain}'"}.get(kind, f"dE/d{plain}")

    def ask(self, id: str, ask: Ask, only: Any = None) -> Question:
        """The question about the first quantity of the pool, in random order, that no other question of the
        variant asks and that makes a sound question (re-targeted rather than redrawn where one does not);
        about ``only`` where it is given (an update that carries a gradient question's answer forward)."""
        pool = [s for s in self.pool(ask) if only is None or s == only]
        if not pool and ask.kind == "formula":
            raise Degenerate(f"a formula question about a parameter whose gradient has no piecewise factor "
                             f"(leaky ReLU) and fits in {MAX_FORMULA} characters")
        fresh = [s for s in pool if self.key(ask.kind, s) not in self.used]
        if not fresh:
            raise Degenerate(f"a quantity no other question asks ({ask.kind}"
                             f"{':' + ask.target if ask.target else ''}: every one is asked already)")
        failure: Degenerate | None = None
        order = self.rng.sample(fresh, len(fresh))
        # an update is asked at the exam's decimals where one can be; only then with more
        for extra in ((0, EXTRA_DECIMALS) if ask.kind == "update" else (0,)):
            for s in order:
                try:
                    question = (self.update(id, s, extra) if ask.kind == "update" else
                                getattr(self, ask.kind)(id, s))
                except Degenerate as exc:
                    failure = failure or exc
                    continue
                self.used.add(self.key(ask.kind, s))
                self.subjects[id] = s
                return question
        if failure is None:         # fresh is not empty: every quantity tried either returned or failed
            raise AssertionError(f"no quantity tried for {ask.kind}{':' + ask.target if ask.target else ''}")
        raise failure

    def numeric(self, id: str, kind: str, quantity: str, prompt, value: Expr, what: str,
                wrong: Iterable[tuple[str, Expr]] = (), tol: float | None = None, decimals: int | None = None,
                **extra) -> Question:
        """A numerical question; no typical wrong value (``wrong``), exact or rounded, may pass its tolerance."""
        places = self.cfg.decimals if decimals is None else decimals
        # gradients need two significant digits; a forward value, the loss or a new weight only must not vanish
        digits = 2 if kind in ("gradient", "choice") else 1
        if not significant(value, places, digits):
            raise Degenerate(f"no answer that rounds to (almost) zero at {places} decimals "
                             f"({what} = {short(value, 2)})")
        display = fixed(value, places)
        if halfway(value, places):
            raise Degenerate(f"no answer halfway between two roundings ({what} = {_decimal(value).normalize():f}: "
                             f"both roundings and the exact value lie on the edge of the tolerance)")
        answer = float(display)
        tol = tolerance(self.cfg, answer) if tol is None else tol
        wrong = list(wrong)
        for label, w in itertools.chain([("the answer 0", sp.S.Zero)], wrong):
            if accepted(display, tol, w, places) and not same(w, value):
                raise Degenerate(f"no typical mistake within the tolerance ({what} = {display} ± "
                                 f"{Decimal(repr(tol)):f} also accepts {fixed(w, places)}, {label})")
        mistaken = _mistaken(display, value, wrong, places) if kind != "choice" else ()
        return Question(id, kind, quantity, tuple(prompt), answer, display, display, tol, mistakes=mistaken, **extra)

    def gradient_math(self, p: Symbol) -> Math:
        name = self.name(p)
        return Math(rf"\frac{{\partial E}}{{\partial {name.latex}}}", f"dE/d{name.plain}")

    # the kinds: each asks about one quantity of its pool, or raises Degenerate -----------------------
    def forward(self, id: str, s: Symbol) -> Question:
        name = self.name(s)
        net = self.sol.network
        is_net = any(s in layer for layer in net.nets)
        what = ("net input" if is_net else "output" if s in net.outputs else "hidden activation")
        batch = self.sol.spec.samples > 1
        sample = " for the first sample" if batch else ""
        quantity = f"{name.plain}[1]" if batch else name.plain      # the claim syntax's sample index
        prompt = [f"Compute the {what} ", Math(name.latex, name.plain), f" of the forward pass{sample}."]
        return self.numeric(id, "forward", quantity, prompt, self.sol.training.first.samples[0][s], name.plain,
                            wrong=self.forward_mistakes(s))

    def forward_mistakes(self, s: Symbol) -> list[tuple[str, Expr]]:
        """A unit worked out halfway: its activation function or its bias left out."""
        env = self.sol.training.first.samples[0]
        return [(c.label, exact(c.expr.xreplace(env))) for c in catalogue.model(self.sol).forward_candidates(s)
                if c.label is not None]

    def loss(self, id: str, _: None) -> Question:
        prompt = ["Compute the loss ", Math("E", "E"), " for the initial parameters."]
        return self.numeric(id, "loss", "E", prompt, self.sol.training.first.loss, "E", wrong=self.loss_mistakes())

    def loss_mistakes(self) -> list[tuple[str, Expr]]:
        """The loss with another constant in front: the ½ or the mean of a related loss, or the plain sum."""
        m, E = catalogue.model(self.sol), self.sol.training.first.loss
        return [(mistake.label, mistake.formula.xreplace({m.E: E})) for mistake in loss_mistakes(m)]

    def gradient(self, id: str, p: Symbol) -> Question:
        m = self.gradient_math(p)
        prompt = ["Compute the gradient ", m, " for the initial parameters."]
        return self.numeric(id, "gradient", m.plain, prompt, self.sol.training.first.gradient[p], m.plain,
                            wrong=self.gradient_mistakes(p))

    def gradient_mistakes(self, p: Symbol) -> Iterable[tuple[str, Expr]]:
        """The values of the typical wrong formulas for ∂E/∂p, computed one by one as they are needed."""
        return ((label, _value(self.sol, formula)) for label, formula in mistakes(self.sol, p))

    def update(self, id: str, p: Symbol, extra: int = 0) -> Question:
        name, step = self.name(p), self.sol.training.first
        g, old = step.gradient[p], step.parameters[p]
        if not significant(g, self.cfg.decimals):
            raise Degenerate(f"no answer that rounds to (almost) zero at {self.cfg.decimals} decimals "
                             f"(dE/d{name.plain} = {short(g, 2)}, asked through {name.plain}')")
        rate = learning_rates(self.sol.derivation)[p]
        prompt = ["Compute the weight " if p not in self._biases() else "Compute the bias ",
                  Math(f"{{{name.latex}}}'", f"{name.plain}'"),       # braces: w^{(1)}_{12}' is a double superscript
                  " after one step of gradient descent with learning rate ",
                  Math(rf"\eta = {_short(rate)}", f"eta = {_short(rate)}"), "."]
        decay = (step.decay or {}).get(p, sp.S.Zero)       # λp with weight decay: the step is η (∂E/∂p + λp)
        wrong = [(slip.label.format(p=name.plain), slip.value(old, rate, g, decay)) for slip in UPDATE_SLIPS
                 if slip.label is not None and (decay or not slip.decay_only)]
        wrong += [(f"{label} in dE/d{name.plain}", old - rate * (value + decay))
                  for label, value in self.gradient_mistakes(p)]
        value = step.updated[p]
        # a small step is asked with a decimal or two more than the exam's, so that it and its mistakes show
        for places in range(self.cfg.decimals, min(self.cfg.decimals + extra, MAX_DECIMALS) + 1):
            tol, cap, least = self.update_tolerance(p, fixed(value, places), wrong, places)
            if tol is not None:
                break
        else:
            raise Degenerate(f"an update whose typical mistakes lie clear of its tolerance ({name.plain}' would need "
                             f"±{short(cap, 2)} at most at {places} decimals, less than the ±{short(least, 2)} that "
                             f"the gradient's tolerance and the rounding need)")
        if places > self.cfg.decimals:
            prompt.append(f" Give it to {places} decimal places.")
        return self.numeric(id, "update", f"{name.plain}'", prompt, value, f"{name.plain}'", wrong=wrong, tol=tol,
                            decimals=places)

    def carried(self, p: Symbol, source: int) -> Carried:
        """How p′ follows from a student's gradient g: p′ = (p − η·λp) − η·g, checked against the update itself."""
        step, rate = self.sol.training.first, learning_rates(self.sol.derivation)[p]
        intercept = step.parameters[p] - rate * (step.decay or {}).get(p, sp.S.Zero)
        if not same(intercept - rate * step.gradient[p], step.updated[p]):
            raise Degenerate(f"an update that follows from its gradient as p - eta*(g + lambda*p) (carry_forward; "
                             f"{self.name(p).plain}' = {short(step.updated[p], 6)} does not)")
        shown = number(intercept), number(rate)
        if not all(n.exact for n in shown):
            raise Degenerate(f"a carried-forward update with exact decimals ({self.name(p).plain}' = "
                             f"{shown[0].plain} - {shown[1].plain}*g)")
        return Carried(f"q{source + 1}", source + 1, *shown, f"{{{self.name(p).latex}}}'")

    def update_tolerance(self, p: Symbol, answer: str, wrong: Sequence[tuple[str, Expr]],
                         places: int) -> tuple[float | None, Decimal, Decimal]:
        """The tolerance of p′ given to ``places`` decimals, with the bounds it must fit between: below a quarter
        of the step η·|∂E/∂p| and half the way to the nearest typical wrong value, so that neither p nor
        p + η·∂E/∂p passes; yet at least what a student who takes the gradient as answered (right within its
        tolerance) and rounds p′ can be off: η·(tol + its rounding) + one unit of the last decimal."""
        cfg, step, rate = self.cfg, self.sol.training.first, learning_rates(self.sol.derivation)[p]
        g = step.gradient[p]
        a = Decimal(answer)
        nearest = min(min(abs(_decimal(w) - a), abs(Decimal(fixed(w, places)) - a))
                      for _, w in wrong if not same(w, step.updated[p]))
        cap = min(_decimal(abs(rate * g)) / STEP_SHARE, nearest / 2)
        # a student's gradient within its tolerance of the rounded answer is off the true one by up to that
        # tolerance and half a unit; the student's p′ and the key's are each rounded: a unit more
        shown = fixed(g, cfg.decimals)
        off = Decimal(repr(tolerance(cfg, float(shown)))) + abs(Decimal(shown) - _decimal(g))
        least = _decimal(rate) * off + Decimal(1).scaleb(-places)
        return tolerance(cfg, float(a), cap, least, places), cap, least

    def _biases(self) -> set[Symbol]:
        return {b for layer in self.sol.network.biases for b in layer}

    def formula(self, id: str, p: Symbol) -> Question:
        m = self.gradient_math(p)
        found = _cached("options", self.sol, p, lambda: self.formula_options(p))
        prompt: list[str | Math] = ["Write ", m, " as a formula in the inputs, targets, weights and the values of "
                                    "the forward pass (no numbers)."]
        if self.sol.spec.samples > 1:
            prompt += [" Write the sum over the samples as ", Math(r"\sum_{n}", "sum(…)"), " (typed sum(…))."]
        if mean_ratio(self.sol.spec) != 1:
            prompt += [" Write the number of samples as ", Math("N", "N"), "."]
        right = found[0]
        return Question(id, "formula", m.plain, tuple(prompt), right.plain, right.plain, right.latex, None, found)

    def formula_options(self, p: Symbol) -> tuple[Option, ...]:
        """The right formula and up to DISTRACTORS typical mistakes, each a different function, written with
        the number of samples as N where the loss averages (the formula that holds for any batch)."""
        ratio = mean_ratio(self.sol.spec)
        right = sp.factor_terms(gradient_formula(self.sol, p) * ratio)
        found = [(self.formula_option(right, None), right)]
        for label, wrong in mistakes(self.sol, p):
            # the mean's 1/N dropped is the general formula times N, not this spec's times its N
            wrong = sp.factor_terms(right * N if label == MEAN_DROPPED else wrong * ratio)
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
        return tex(expr, {s: n.latex for s, n in self.d.names.items()})

    def shape(self, id: str, matrix: tuple[str, int]) -> Question:
        spec = self.sol.spec
        kind, l = matrix
        rows, cols = matrix_shape(spec, kind, l)
        symbol_latex, symbol_plain = _matrix_name(kind, l, spec.convention)
        context, displays, plain_displays = matrix_form(spec)
        prompt: list[str | Math] = ["What is the shape (rows × columns) of ", Math(symbol_latex, symbol_plain), "?"]
        display = f"{rows}x{cols}"
        return Question(id, "shape", f"shape({symbol_plain})", tuple(prompt), display, display,
                        rf"{rows} \times {cols}", None, (), context, displays, displays_plain=plain_displays)

    def choice(self, id: str, p: Symbol) -> Question:
        m = self.gradient_math(p)
        value = self.sol.training.first.gradient[p]
        # a typical mistake within the answer's tolerance would choose the right option for the wrong reason
        right = self.numeric(id, "choice", m.plain, [], value, m.plain, wrong=self.gradient_mistakes(p))
        if not isinstance(right.answer, float):
            raise TypeError(f"a numerical question with the answer {right.answer!r}")
        chosen = [Option(right.display, right.display, right.answer, None)]
        candidates: list[Option] = []
        shown = [right.answer]      # the values of the options so far, that a new one must lie apart from
        for label, formula in mistakes(self.sol, p):
            wrong = _value(self.sol, formula)
            if not significant(wrong, self.cfg.decimals):
                continue                  # a distractor of 0.0000 gives the answer away
            display = fixed(wrong, self.cfg.decimals)
            w = float(display)
            if display in self.answers:
                continue                  # another question's answer: the sheet would hint at it
            if all(apart(self.cfg, w, v) for v in shown):
                candidates.append(Option(display, display, w, label))
                shown.append(w)
        if len(candidates) < DISTRACTORS:
            raise Degenerate(f"{DISTRACTORS} distractors for {m.plain} that differ from the answer and from each "
                             f"other by more than the tolerance (found {len(candidates)})")
        picked = sorted(self.rng.sample(range(min(len(candidates), DISTRACTORS + 1)), DISTRACTORS))
        options = chosen + [candidates[i] for i in picked]
        self.rng.shuffle(options)
        prompt: list[str | Math] = ["Which of these values is ", m, "? Choose one."]
        return Question(id, "choice", m.plain, tuple(prompt), right.answer, right.display, right.latex,
                        right.tolerance, tuple(options))


def _short(value: Expr) -> str:
    return number(value).plain


def matrix_shape(spec: Spec, kind: str, l: int) -> tuple[int, int]:
    """The shape of a matrix of the batch matrix form, found by multiplying matrices of those sizes."""
    n, N, convention = spec.layers, spec.samples, spec.convention

    def W(m):   # the weight matrix of layer m as the spec writes it
        return sp.zeros(n[m - 1], n[m]) if convention.stored_in_out else sp.zeros(n[m], n[m - 1])

    def A(m):   # the activations of layer m (A0 = X), one sample per column (row: per row)
        return sp.zeros(N, n[m]) if convention.rows else sp.zeros(n[m], N)

    def delta(m):
        return A(m)

    def spread(m):  # Δ^(m) carried back to the layer below: through W^(m)ᵀ, or W^(m) where W is used transposed
        back = W(m) if convention.uses_transpose else W(m).T
        return delta(m) * back if convention.rows else back * delta(m)

    def dW(m):      # the product whose shape is W^(m)'s
        return A(m - 1).T * delta(m) if convention.rows else \
            A(m - 1) * delta(m).T if convention.uses_transpose else delta(m) * A(m - 1).T

    matrix = {
        "delta": lambda: delta(l),
        "dW": lambda: dW(l),
        "WT": lambda: W(l).T,
        "AT": lambda: A(l).T,
        "WTdelta": lambda: spread(l),
    }[kind]()
    return matrix.shape


def _matrix_name(kind: str, l: int, convention: Convention) -> tuple[str, str]:
    """The LaTeX and plain names of a matrix of the matrix form (the worked solution's Δ, W, A); WTdelta is the
    product that carries Δ^(l) to the layer below, as the convention writes it."""
    spread = {Convention.COLUMN: (rf"W^{{({l})\mathsf{{T}}}} \Delta^{{({l})}}", f"W{l}T Delta{l}"),
              Convention.ROW: (rf"\Delta^{{({l})}} W^{{({l})\mathsf{{T}}}}", f"Delta{l} W{l}T"),
              Convention.TRANSPOSED: (rf"W^{{({l})}} \Delta^{{({l})}}", f"W{l} Delta{l}")}[convention]
    return {
        "delta": (rf"\Delta^{{({l})}}", f"Delta{l}"),
        "dW": (rf"\frac{{\partial E}}{{\partial W^{{({l})}}}}", f"dE/dW{l}"),
        "WT": (rf"W^{{({l})\mathsf{{T}}}}", f"W{l}T"),
        "AT": (rf"A^{{({l})\mathsf{{T}}}}", f"A{l}T"),
        "WTdelta": spread,
    }[kind]


def _layer_range(L: int) -> str:
    return "l = 1" if L == 1 else "l = 1, 2" if L == 2 else rf"l = 1, \dots, {L}"


# the batch matrix form in each convention: its displays in LaTeX and in plain text
_MATRIX_FORMS = {
    Convention.COLUMN: ((r"Z^{(l)} = W^{(l)} A^{(l-1)} + b^{(l)}, \qquad A^{(l)} = f\left(Z^{(l)}\right),",
                         r"\Delta^{(l)} = \frac{\partial E}{\partial Z^{(l)}}, \qquad "
                         r"\frac{\partial E}{\partial W^{(l)}} = \Delta^{(l)} A^{(l-1)\mathsf{T}},",
                         r"\Delta^{(l-1)} = \left(W^{(l)\mathsf{T}} \Delta^{(l)}\right) \odot f'\left(Z^{(l-1)}\right)."),
                        ("Z(l) = W(l) A(l-1) + b(l),  A(l) = f(Z(l)),",
                         "Delta(l) = dE/dZ(l),  dE/dW(l) = Delta(l) A(l-1)T,",
                         "Delta(l-1) = (W(l)T Delta(l)) ⊙ f'(Z(l-1)).")),
    Convention.ROW: ((r"Z^{(l)} = A^{(l-1)} W^{(l)} + b^{(l)}, \qquad A^{(l)} = f\left(Z^{(l)}\right),",
                      r"\Delta^{(l)} = \frac{\partial E}{\partial Z^{(l)}}, \qquad "
                      r"\frac{\partial E}{\partial W^{(l)}} = A^{(l-1)\mathsf{T}} \Delta^{(l)},",
                      r"\Delta^{(l-1)} = \left(\Delta^{(l)} W^{(l)\mathsf{T}}\right) \odot f'\left(Z^{(l-1)}\right)."),
                     ("Z(l) = A(l-1) W(l) + b(l),  A(l) = f(Z(l)),",
                      "Delta(l) = dE/dZ(l),  dE/dW(l) = A(l-1)T Delta(l),",
                      "Delta(l-1) = (Delta(l) W(l)T) ⊙ f'(Z(l-1)).")),
    Convention.TRANSPOSED: ((r"Z^{(l)} = W^{(l)\mathsf{T}} A^{(l-1)} + b^{(l)}, \qquad A^{(l)} = f\left(Z^{(l)}\right),",
                             r"\Delta^{(l)} = \frac{\partial E}{\partial Z^{(l)}}, \qquad "
                             r"\frac{\partial E}{\partial W^{(l)}} = A^{(l-1)} \Delta^{(l)\mathsf{T}},",
                             r"\Delta^{(l-1)} = \left(W^{(l)} \Delta^{(l)}\right) \odot f'\left(Z^{(l-1)}\right)."),
                            ("Z(l) = W(l)T A(l-1) + b(l),  A(l) = f(Z(l)),",
                             "Delta(l) = dE/dZ(l),  dE/dW(l) = A(l-1) Delta(l)T,",
                             "Delta(l-1) = (W(l) Delta(l)) ⊙ f'(Z(l-1)).")),
}


def matrix_form(spec: Spec) -> tuple[tuple[str | Math, ...], tuple[str, ...], tuple[str, ...]]:
    """The batch matrix form of backpropagation in the spec's convention: a sentence, its displays, and the
    displays as plain text."""
    N, L = spec.samples, spec.depth
    where = "rows" if spec.convention.rows else "columns"
    stored: tuple[str | Math, ...] = ()
    if spec.convention.uses_transpose:      # the third seed's W_ih: 4×5, used as W_ihᵀ
        stored = ("; each ", Math(r"W^{(l)}", "W(l)"), " is stored input × output, ",
                  Math(r"n_{l-1} \times n_l", "n(l-1) x n(l)"))
    intro = ("Stack the ", Math(f"N = {N}", f"N = {N}"), f" sample{'s' if N > 1 else ''} as the {where} of ",
             Math(r"A^{(0)} = X", "A0 = X"), *stored, ". For ", Math(_layer_range(L), f"l = 1, ..., {L}"),
             ", the forward and the backward pass read")
    displays, plain = _MATRIX_FORMS[spec.convention]
    return intro, displays, plain


# -- one variant's questions: ask, verify --------------------------------------------------------

def distinct(sol: Solution, cfg: ExamConfig, asks: Sequence[Ask]) -> list[bool]:
    """Which questions, kept in order, can each ask a quantity no other asks: a matching of questions to
    quantities, grown one question at a time (a formula counts with every gradient it could be about)."""
    asker = Asker(sol, cfg, random.Random(0))
    loose = [Ask("gradient", a.target) if a.kind == "formula" else a for a in asks]
    keys = [list(dict.fromkeys(asker.key(a.kind, s) for s in asker.pool(a))) for a in loose]
    owner: dict[str, int] = {}

    def place(i: int, seen: set[str]) -> bool:     # an augmenting path; a failed search changes nothing
        for k in keys[i]:
            if k not in seen:
                seen.add(k)
                if k not in owner or place(owner[k], seen):
                    owner[k] = i
                    return True
        return False

    return [place(i, set()) for i in range(len(asks))]


def ask_all(sol: Solution, cfg: ExamConfig, rng: random.Random) -> tuple[Question, ...]:
    """The questions of one variant, in the order of [exam].questions, ids q1, q2, …

    The questions with the fewest quantities to choose from are asked first, so that one with a fixed
    target (gradient:w5) finds its quantity still free of a question that could have chosen another.
    """
    asker = Asker(sol, cfg, rng)
    # among questions with as many quantities, the choices last: their distractors avoid the others' answers
    order = sorted(range(len(cfg.questions)),
                   key=lambda i: (len(asker.pool(cfg.questions[i])), cfg.questions[i].kind == "choice"))
    sources = dict(cfg.links)
    asked = {}
    for i in _sources_first(order, sources):
        source = sources.get(i)
        p = None if source is None else asker.subjects[f"q{source + 1}"]
        asked[i] = asker.ask(f"q{i + 1}", cfg.questions[i], p)
        if source is not None:
            asked[i] = replace(asked[i], carried=asker.carried(p, source))
        asker.answers.add(asked[i].display)
    _no_hints(list(asked.values()))
    return tuple(replace(asked[i], points=cfg.points_of(i), partial=cfg.partial) for i in range(len(cfg.questions)))


def _sources_first(order: Sequence[int], sources: dict[int, int]) -> list[int]:
    """The order of asking, with each carried-forward update right after the gradient question it follows."""
    out = [i for i in order if i not in sources]
    for update, gradient in sorted(sources.items(), key=lambda link: out.index(link[1]), reverse=True):
        out.insert(out.index(gradient) + 1, update)
    return out


def carried_links(sol: Solution, cfg: ExamConfig) -> tuple[tuple[int, int], ...]:
    """[exam].carry_forward: each update question paired with the nearest gradient question before it whose every
    parameter it can update (the update then asks about the gradient's parameter), one update per gradient."""
    links: list[tuple[int, int]] = []
    for j, ask in enumerate(cfg.questions):
        updatable = set(parameter_pool(sol, ask.target, trainable=True)) if ask.kind == "update" else set()
        free = [i for i in range(j - 1, -1, -1) if cfg.questions[i].kind == "gradient"
                and i not in {g for _, g in links} and set(parameter_pool(sol, cfg.questions[i].target)) <= updatable]
        if free:
            links.append((j, free[0]))
    if not links:
        raise SpecError(sol.spec.source, "[exam].carry_forward", "no update question follows a gradient question "
                                                                 "about parameters it can update; expected questions "
                                                                 "like [\"gradient:w5\", \"update:w5\"]")
    return tuple(links)


def _no_hints(questions: Sequence[Question]) -> None:
    """No option of a choice is the answer of another question on the same sheet."""
    answers = {q.display: q.id for q in questions}
    for q in questions:
        for o in q.options:
            if o.mistake is not None and answers.get(o.plain, q.id) != q.id:
                raise Degenerate(f"a distractor of {q.id} ({o.plain}) is the answer of {answers[o.plain]}")


def verify(sol: Solution, questions: Sequence[Question]) -> None:
    """Every answer holds for `derive check`, and no distractor does; a failure is a bug, never written."""
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
