"""The [exam] table: what varies between exam variants, how values are drawn, and which draws are degenerate."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Mapping, Sequence

from sympy import Rational

from derive.errors import SpecError
from derive.model.registry import ACTIVATIONS, LOSSES, Saturation, activation, pairing_problem, takes_slope
from derive.model.spec import Spec, activation_names, number, parse
from derive.numeric.rounding import short

KINDS = ("forward", "loss", "gradient", "formula", "update", "shape", "choice")
MAX_VALUES = 100_000                 # values a range may expand to
MAX_QUESTIONS = 50
MAX_DECIMALS = 8
DEFAULT_TRIES = 1000



@dataclass(frozen=True)
class Ask:
    """One question of the [exam].questions list: its kind and what it is about (None: drawn per variant)."""

    kind: str
    target: str | None


@dataclass(frozen=True)
class ExamConfig:
    """The validated [exam] table; value sets are sorted tuples of exact Rationals."""

    title: str
    intro: str                           # a paragraph printed on every sheet
    decimals: int
    tolerance: Rational                  # absolute, or relative when ``relative``
    relative: bool
    questions: tuple[Ask, ...]
    sets: Mapping[str, tuple[Rational, ...]]     # x, y, W, b, W1, b2, … and learning_rate
    activations: tuple[tuple[str, ...], ...]     # the options, each one name per non-input layer
    losses: tuple[str, ...]
    combos: tuple[tuple[tuple[str, ...], str], ...]   # (activations, loss) pairs the spec allows
    tries: int
    asked: bool                          # the questions come from [exam].questions, not the defaults
    points: int | tuple[int, ...] = 1    # each question's, or one per question of [exam].questions
    partial: int = 0                     # [exam].partial_credit: the percent a typical mistake earns in the LMS
    carry_forward: bool = False          # [exam].carry_forward: an update earns its marks from the student's gradient
    # carry_forward: (update, gradient) question positions (from 0); the update asks about the gradient's parameter
    links: tuple[tuple[int, int], ...] = ()

    def points_of(self, i: int) -> int:
        """The points of question i (from 0)."""
        return self.points if isinstance(self.points, int) else self.points[i]

    def tolerance_for(self, answer: float, decimals: int | None = None) -> float:
        """The absolute tolerance of a numerical answer: never below half a unit of the last decimal."""
        floor = 0.5 * 10.0 ** -(self.decimals if decimals is None else decimals)
        tol = float(self.tolerance) * abs(answer) if self.relative else float(self.tolerance)
        return max(tol, floor)


# -- reading the [exam] table ---------------------------------------------------------------

VALUE_KEYS = {"x", "y", "W", "b", "learning_rate"}
KEYS = {"title", "intro", "decimals", "tolerance", "questions", "points", "partial_credit", "carry_forward",
        "activation", "loss", "tries"} | VALUE_KEYS
MAX_POINTS = 100


def _check_rates(sets: Mapping[str, tuple[Rational, ...]], spec: Spec, source: str) -> None:
    """[exam].learning_rate: positive rates, and none where the template gives each layer its own."""
    if any(v <= 0 for v in sets.get("learning_rate", ())):
        raise SpecError(source, "[exam].learning_rate", "expected positive learning rates")
    if "learning_rate" in sets and spec.optimizer.per_layer:
        raise SpecError(source, "[exam].learning_rate", "the template's [train].learning_rate gives each layer its "
                                                         "own rate; expected no [exam].learning_rate beside it")


def config(spec: Spec) -> ExamConfig:
    """Validate ``spec.raw["exam"]`` against the template spec; defaults vary the numbers only."""
    source = spec.source
    table = spec.raw.get("exam", {})
    if not isinstance(table, Mapping):
        raise SpecError(source, "[exam]", f"expected a table; got {table!r}"[:120])
    layer_keys = {f"{m}{l}" for m in "Wb" for l in range(1, spec.depth + 1)}
    for key in table:
        if key not in KEYS | layer_keys:
            raise SpecError(source, f"[exam].{key}", "unknown key; expected one of "
                                                     f"{', '.join(sorted(KEYS))}, or W1, b1, … per layer")
        if key[0] == "b" and (not spec.bias.any or key[1:] and spec.bias.of(int(key[1:]) - 1) == "none"):
            raise SpecError(source, f"[exam].{key}", "the spec has no biases there ([network].bias = \"none\")")
    title = table.get("title", spec.title or "Backpropagation")
    if not isinstance(title, str) or len(title) > 200:
        raise SpecError(source, "[exam].title", "expected a string of at most 200 characters")
    intro = table.get("intro", "")
    if not isinstance(intro, str) or len(intro) > 5000:
        raise SpecError(source, "[exam].intro", "expected a string of at most 5000 characters")
    decimals = _whole(table, "decimals", 4, 1, MAX_DECIMALS, source)
    tolerance, relative = _tolerance(table.get("tolerance", "1%"), source)
    # ranges skip 0 for inputs, weights and biases: a zero cuts a path and makes gradients vanish
    sets = {key: _values(table[key], source, f"[exam].{key}", zero=key[0] not in "xWb")
            for key in sorted(VALUE_KEYS | layer_keys) if key in table}
    for key in ("x", "W", "b"):
        sets.setdefault(key, DEFAULTS[key])
    _check_rates(sets, spec, source)
    activations = _activation_options(table.get("activation"), spec, source)
    losses = _loss_options(table.get("loss"), spec, source)
    combos = tuple((a, l) for a in activations for l in losses if _allowed(spec, a, l))
    if not combos:
        raise SpecError(source, "[exam].loss", "no pair of [exam].activation and [exam].loss is allowed "
                                               "(softmax needs cross_entropy, bce a sigmoid output)")
    questions = _questions(table.get("questions"), spec, source)
    tries = _whole(table, "tries", DEFAULT_TRIES, 1, 100_000, source)
    points = _points(table, len(questions), source)
    # whole percents below 100: a mistake worth full marks would be no mistake, and Moodle reads %25%
    partial = _whole(table, "partial_credit", 0, 0, 99, source)
    carry = table.get("carry_forward", False)
    if not isinstance(carry, bool):
        raise SpecError(source, "[exam].carry_forward", f"expected true or false; got {_shown(carry)}"[:160])
    return ExamConfig(title, intro, decimals, tolerance, relative, questions, sets, activations, losses, combos,
                      tries, "questions" in table, points, partial, carry)


def _points(table: Mapping[str, Any], count: int, source: str) -> int | tuple[int, ...]:
    """[exam].points: a whole number for every question, or a list of one per question of [exam].questions
    (whole numbers: Moodle weighs a Cloze field by one)."""
    value = table.get("points", 1)
    if not isinstance(value, list):
        return _whole(table, "points", 1, 1, MAX_POINTS, source)
    if "questions" not in table or len(value) != count:
        raise SpecError(source, "[exam].points", f"a list of points needs [exam].questions and one number per "
                                                 f"question ({count}); got {len(value)}, or one number for all")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_POINTS:
            raise SpecError(source, "[exam].points", f"expected whole numbers from 1 to {MAX_POINTS}; got {_shown(v)}"[:160])
    return tuple(value)


def _whole(table: Mapping[str, Any], key: str, default: int, low: int, high: int, source: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(source, f"[exam].{key}", f"expected a whole number from {low} to {high}; got {_shown(value)}"[:160])
    return value


def _shown(value: Any) -> str:
    """A value as the user wrote it: 0.5 (TOML reads a Decimal), "a" with its quotes."""
    return str(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else repr(value)


def _tolerance(value: Any, source: str) -> tuple[Rational, bool]:
    field = "[exam].tolerance"
    if isinstance(value, str) and value.strip().endswith("%"):
        pct = number(value.strip()[:-1], source, field)
        if not 0 <= pct <= 100:
            raise SpecError(source, field, f"expected a percentage from 0% to 100%; got {value!r}")
        return pct / 100, True
    tol = number(value, source, field)
    if tol < 0:
        raise SpecError(source, field, "expected an absolute tolerance ≥ 0 or a percentage like \"1%\"")
    return tol, False


def _values(value: Any, source: str, field: str, zero: bool) -> tuple[Rational, ...]:
    """A value set: a list of numbers, one number, or a range {min, max, step} (which skips 0 unless zero)."""
    if isinstance(value, Mapping):
        unknown = set(value) - {"min", "max", "step"}
        if unknown or not {"min", "max", "step"} <= set(value):
            raise SpecError(source, field, "expected a range {min = …, max = …, step = …} or a list of values")
        low, high = number(value["min"], source, f"{field}.min"), number(value["max"], source, f"{field}.max")
        step = number(value["step"], source, f"{field}.step")
        if step <= 0 or high < low:
            raise SpecError(source, field, "expected min ≤ max and a positive step")
        count = int((high - low) / step) + 1
        if count > MAX_VALUES:
            raise SpecError(source, field, f"expected at most {MAX_VALUES} values; the range has {count}")
        values = [low + i * step for i in range(count)]
        values = [v for v in values if zero or v != 0]
    elif isinstance(value, list):
        if not value or len(value) > MAX_VALUES:
            raise SpecError(source, field, f"expected a list of 1 to {MAX_VALUES} numbers")
        values = [number(v, source, f"{field}[{i}]") for i, v in enumerate(value)]
    else:
        values = [number(value, source, field)]
    if not values:
        raise SpecError(source, field, "the range holds no value but 0, which is skipped: widen it")
    return tuple(sorted(set(values)))


def _range(low: str, high: str, step: str, zero: bool = False) -> tuple[Rational, ...]:
    return _values({"min": low, "max": high, "step": step}, "<defaults>", "", zero)


# Hand-workable defaults: one-decimal inputs, two-decimal weights and biases in [−0.5, 0.5], never 0
# (a zero input or weight cuts a path and makes gradients vanish).
DEFAULTS = {"x": _range("-1", "1", "0.1"), "W": _range("-0.5", "0.5", "0.05"), "b": _range("-0.5", "0.5", "0.05")}


def _classes(rng: random.Random, classes: int, samples: int) -> list[int]:
    """One class per sample, not all the same where there are two samples or more: a batch of one class
    teaches nothing about the softmax (and its gradients say little)."""
    hot = [rng.randrange(classes) for _ in range(samples)]
    while classes > 1 and samples > 1 and len(set(hot)) == 1:
        hot[-1] = rng.randrange(classes)
    return hot


def default_targets(output: str, loss: str) -> tuple[Rational, ...] | None:
    """Targets a student can reach with the output activation; None: one-hot rows (softmax)."""
    targets = ACTIVATIONS[output].targets
    if targets is None:
        return None
    if LOSSES[loss].probabilities:
        return (Rational(0), Rational(1))
    return _range(*targets)


def _activation_options(value: Any, spec: Spec, source: str) -> tuple[tuple[str, ...], ...]:
    field = "[exam].activation"
    if value is None:
        return (spec.activations,)
    options = value if isinstance(value, list) else [value]
    out = []
    for option in options:
        out.append(activation_names(option, spec.depth, source, field))
    return tuple(dict.fromkeys(out))


def _loss_options(value: Any, spec: Spec, source: str) -> tuple[str, ...]:
    if value is None:
        return (spec.loss,)
    options = value if isinstance(value, list) else [value]
    for name in options:
        if name not in LOSSES:
            raise SpecError(source, "[exam].loss", f"expected one of {', '.join(LOSSES)}; got {name!r}"[:200])
    return tuple(dict.fromkeys(options))


def _allowed(spec: Spec, activations: tuple[str, ...], loss: str) -> bool:
    return pairing_problem(loss, activations[-1]) is None


def _questions(value: Any, spec: Spec, source: str) -> tuple[Ask, ...]:
    field = "[exam].questions"
    if value is None:
        return default_questions(spec)
    if not isinstance(value, list) or not value or len(value) > MAX_QUESTIONS or not all(
            isinstance(v, str) for v in value):
        raise SpecError(source, field, f"expected a list of 1 to {MAX_QUESTIONS} strings like \"gradient\" "
                                       f"or \"gradient:w5\"")
    asks = []
    for text in value:
        kind, _, target = text.partition(":")
        kind, target = kind.strip(), target.strip() or None
        if kind not in KINDS:
            raise SpecError(source, field, f"expected kinds {', '.join(KINDS)}; got {text!r}"[:200])
        if kind == "loss" and target:
            raise SpecError(source, field, f"the loss question takes no target; got {text!r}"[:200])
        asks.append(Ask(kind, target))
    return tuple(asks)


def default_questions(spec: Spec) -> tuple[Ask, ...]:
    """Forward value, loss, an output-layer and a first-layer gradient, an update, a formula, a shape, a choice."""
    first, last = "W1", f"W{spec.depth}"
    asks = [Ask("forward", "output"), Ask("loss", None), Ask("gradient", last)]
    if spec.depth > 1:
        asks.append(Ask("gradient", first))
    asks += [Ask("update", first), Ask("formula", first)]
    asks += [Ask("shape", None), Ask("choice", first)]
    return tuple(asks)


# -- seeds and drawing -----------------------------------------------------------------------

def variant_seed(seed: int, variant: int, retry: int = 0) -> int:
    """The seed of one variant: a stable hash of the exam's seed, the variant number and the retry."""
    digest = hashlib.sha256(f"derive-exam:{seed}:{variant}:{retry}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 1_000_000_000


def _rate(template: Spec, drawn: Rational) -> Any:
    """The variant's learning rate: the one drawn, or the template's rate per layer, kept."""
    if not template.optimizer.per_layer:
        return plain_number(drawn)
    return {g: plain_number(template.optimizer.rate(g)) for g in template.groups}


def _descent(template: Spec) -> dict[str, Any]:
    """The template's [train] options besides the rate, as spelled: a variant is trained as its template is."""
    given = template.raw.get("train", {})
    optimizer = template.optimizer
    out: dict[str, Any] = {key: given[key] for key in ("batch", "shuffle", "decay_biases") if key in given}
    out.update({key: plain_number(value) for key, value in (("momentum", optimizer.momentum),
                                                             ("weight_decay", optimizer.weight_decay)) if value})
    return out


def plain_number(value: Rational) -> int | float | str:
    """A JSON/TOML value that spec.number reads back exactly: an int, a float whose repr is exact, or "p/q"."""
    if value.q == 1:
        return int(value.p)
    as_float = float(value)
    if Fraction(repr(as_float)) == Fraction(int(value.p), int(value.q)):
        return as_float
    return f"{value.p}/{value.q}"


def draw(template: Spec, cfg: ExamConfig, rng: random.Random) -> dict[str, Any]:
    """One candidate spec (as the TOML structure) with every varying number drawn from ``rng``."""
    activations, loss = rng.choice(cfg.combos)
    layers = template.layers
    targets = cfg.sets.get("y") or default_targets(activations[-1], loss)
    x = [[rng.choice(cfg.sets["x"]) for _ in range(layers[0])] for _ in range(template.samples)]
    if targets is None:
        y = [[Rational(int(j == hot)) for j in range(layers[-1])] for hot in _classes(rng, layers[-1], template.samples)]
    else:
        y = [[rng.choice(targets) for _ in range(layers[-1])] for _ in range(template.samples)]
    init: dict[str, Any] = {"seed": template.optimizer.seed} if template.optimizer.shuffle else {}
    for l in range(1, len(layers)):
        values = cfg.sets.get(f"W{l}", cfg.sets["W"])
        W = [[rng.choice(values) for _ in range(layers[l - 1])] for _ in range(layers[l])]
        if template.convention.stored_in_out:
            W = [list(col) for col in zip(*W)]
        init[f"W{l}"] = [[plain_number(v) for v in row] for row in W]
        values = cfg.sets.get(f"b{l}", cfg.sets["b"])
        if template.bias.of(l - 1) == "neuron":
            init[f"b{l}"] = [plain_number(rng.choice(values)) for _ in range(layers[l])]
        elif template.bias.of(l - 1) == "shared":
            init[f"b{l}"] = plain_number(rng.choice(values))
    rates = cfg.sets.get("learning_rate", (template.learning_rate,))
    network: dict[str, Any] = {"layers": list(layers), "activation": list(activations), "bias": template.bias.uniform or list(template.bias.kinds),
                               "loss": loss, "convention": template.convention.value}
    if any(takes_slope(name) for name in activations):
        network["slope"] = plain_number(template.slope)
    if template.reduction != "mean":
        network["reduction"] = template.reduction
    # the template's description tells of the template's numbers, so a variant keeps only the title
    raw: dict[str, Any] = {"title": template.title} if template.title else {}
    raw.update({
        "network": network,
        "data": {"x": [[plain_number(v) for v in row] for row in x], "y": [[plain_number(v) for v in row] for row in y]},
        "init": init,
        "train": {"learning_rate": _rate(template, rng.choice(rates)), "steps": template.steps,
                  "freeze": list(template.freeze), **_descent(template)},
        "notation": {"style": template.style},
    })
    return raw


def build_spec(raw: Mapping[str, Any], source: str) -> Spec:
    """The drawn variant as a validated Spec (the template was valid, so only a bad [exam] value can fail)."""
    return parse(raw, source)


# -- degeneracy of the forward pass, in floats (cheap, before anything exact is computed) -----

def forward(spec: Spec) -> list[list[tuple[list[float], list[float]]]]:
    """Per sample, per layer: the net inputs z and activations a, in double precision."""
    out = []
    acts = [activation(name, spec.slope) for name in spec.activations]
    for x in spec.x:
        a, layers = [float(v) for v in x], []
        for l in range(spec.depth):
            bias = [float(b) for b in spec.biases[l]]
            z = [sum(float(w) * ak for w, ak in zip(row, a)) + (bias[0 if spec.bias.of(l) == "shared" else j] if bias else 0.0)
                 for j, row in enumerate(spec.weights[l])]
            a = acts[l].layer_double(z)
            layers.append((z, a))
        out.append(layers)
    return out


def degenerate(spec: Spec, unit_name) -> str | None:
    """Why the forward pass is degenerate (a saturated or dead unit), or None; ``unit_name(l, j)`` names units."""
    passes = forward(spec)
    for l, name in enumerate(spec.activations):
        for j in range(spec.layers[l + 1]):
            zs = [p[l][0][j] for p in passes]
            unit = unit_name(l, j)
            reason = _degenerate_unit(name, activation(name, spec.slope).saturation, zs,
                                      [p[l][1][j] for p in passes], unit)
            if reason is not None:
                return reason
    return None


def _degenerate_unit(name: str, limits: Saturation, zs: Sequence[float], outputs: Sequence[float],
                     unit: str) -> str | None:
    """Why one unit's net inputs zs (and activations, over the samples) make a poor exercise, or None."""
    if limits.limit is not None and any(abs(z) > limits.limit for z in zs):
        return f"no saturated {name} unit (|z| ≤ {limits.limit:g}; {unit} has z = {short(_worst(zs), 3)})"
    if limits.flat_below is not None and any(z < limits.flat_below for z in zs):
        return f"no flat {name} unit (z ≥ {limits.flat_below:g}; {unit} has z = {short(min(zs), 3)})"
    if limits.kink and any(z == 0 for z in zs):
        return f"no {name} unit exactly at its kink z = 0 ({unit})"
    if limits.dies and all(z < 0 for z in zs):
        return f"no dead {ACTIVATIONS[name].word} unit (z > 0 for some sample; {unit} has z = {short(max(zs), 3)})"
    if limits.peak is not None and any(a > limits.peak for a in outputs):
        return f"no saturated {name} (every output ≤ {limits.peak:g}; {unit} exceeds it)"
    return None


def _worst(zs: Sequence[float]) -> float:
    return max(zs, key=abs)


# -- a variant's spec as TOML, so `derive solve` and `derive check` take it as it is ----------------

TABLE_ORDER = ("network", "data", "init", "train", "notation")


def _toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):         # an inline table of our own keys (a learning rate per layer: W1, b1, …)
        return "{" + ", ".join(f"{key} = {_toml_value(v)}" for key, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(raw: Mapping[str, Any]) -> str:
    """The spec structure (as ``draw`` builds it) as a TOML document that spec.loads reads back exactly."""
    lines = [f"{key} = {_toml_value(raw[key])}" for key in ("title", "description") if key in raw]
    for table in TABLE_ORDER:
        if table in raw:
            lines += ["", f"[{table}]"] + [f"{key} = {_toml_value(value)}" for key, value in raw[table].items()]
    return "\n".join(lines).lstrip("\n") + "\n"
