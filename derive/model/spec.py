"""Reading and validating a spec (TOML file, built-in example, dict or keywords) into a Spec."""

from __future__ import annotations

import itertools
import random
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Mapping

from sympy import Expr, Rational

from derive.errors import InputError, SpecError
from derive.io import read_text
from derive.model.convention import Convention
from derive.model.examples import example_names, example_text
from derive.model.notation import (
    Notation,  # the names a user may freeze are the notation's names
    symbol_problem,
)
from derive.model.registry import ACTIVATIONS, DEFAULT_ACTIVATION, DEFAULT_LOSS, LOSSES, Loss, pairing_problem

BIASES = ("none", "neuron", "shared")
STYLES = ("sequential", "indexed")
CONVENTIONS = tuple(c.value for c in Convention)
REDUCTIONS = ("mean", "sum")     # mean: each loss as defined (today's); sum: without its 1/N and 1/J
MAX_PARAMETERS = 5000        # 32-32-32-10 (2,442) derives in about a second; far beyond, minutes
MAX_SAMPLES = 1000
MAX_STEPS = 1_000_000
MAX_DEPTH = 50               # layers after the input layer
# The exact first step costs about 0.2 ms per parameter and sample, later steps about 0.1-0.4 µs
# per parameter, sample and step (the compiled float path): keep each under about ten seconds.
MAX_EXACT_WORK = 50_000      # parameters × samples
MAX_FLOAT_WORK = 50_000_000  # parameters × samples × steps
LARGEST = 10 ** 12           # magnitude of any number in a spec
SMALLEST_EXPONENT = -50      # 1e-50: a decimal exponent beyond this would be slow to make exact
TABLES = {
    "network": {"layers", "activation", "bias", "loss", "slope", "convention", "reduction"},
    "data": {"x", "y"},
    "init": None,            # W1, b1, … and seed: checked against the architecture
    "train": {"learning_rate", "steps", "freeze", "batch", "shuffle", "weight_decay", "decay_biases", "momentum"},
    "notation": {"style", "aliases", "symbols"},
    "exam": None,            # read by derive.exam
}
TOP = {"title", "description", *TABLES}

Matrix = tuple[tuple[Rational, ...], ...]


@dataclass(frozen=True)
class Bias:
    """The biases of each layer after the input (0-based): "none", "neuron" (one per unit) or "shared" (one
    per layer); [network].bias gives one for every layer or a list of one per layer."""

    kinds: tuple[str, ...]

    def of(self, l: int) -> str:
        return self.kinds[l]

    @property
    def any(self) -> bool:
        """Whether some layer has a bias."""
        return any(k != "none" for k in self.kinds)

    @property
    def uniform(self) -> str | None:
        """The one kind of every layer, or None where the layers differ."""
        return self.kinds[0] if len(set(self.kinds)) == 1 else None

    def count(self, l: int, units: int) -> int:
        """How many bias parameters layer l has with ``units`` units."""
        return {"none": 0, "neuron": units, "shared": 1}[self.kinds[l]]


@dataclass(frozen=True)
class Optimizer:
    """How [train] updates the parameters: rates, which samples each update uses, decay and momentum.

    The defaults are plain full-batch gradient descent: every update on all the samples, no
    weight decay, no momentum, one learning rate.
    """

    rates: Mapping[str, Rational]   # per layer group "W1", "b1", …: the rate of its parameters
    samples: int                    # N, the number of samples in [data]
    batch: int                      # samples per update: N (the whole batch), 1 (online) or a mini-batch size
    shuffle: bool = False           # each pass over the data in an order drawn from [init].seed
    seed: int = 0
    weight_decay: Rational = Rational(0)        # λ: the loss gains λ/2 Σ w²
    decay_biases: bool = False
    momentum: Rational = Rational(0)            # μ: v ← μ v − η ∇E, w ← w + v
    # the velocity before the first update, in the network's parameter order: empty for 0 (a spec's own
    # start); a later update worked on its own (Solution.later_updates) starts from the one before it
    velocity: tuple[Expr, ...] = ()

    @property
    def per_layer(self) -> bool:
        """Whether the layers' learning rates differ."""
        return len(set(self.rates.values())) > 1

    @property
    def plain(self) -> bool:
        """Whether this is today's full-batch descent with one rate and neither decay nor momentum."""
        return not (self.stochastic or self.weight_decay or self.momentum or self.per_layer)

    @property
    def stochastic(self) -> bool:
        """Whether an update uses fewer samples than the whole batch (online or mini-batches)."""
        return self.batch < self.samples

    def order(self) -> Iterator[tuple[int, ...]]:
        """The samples (0-based) of each update in turn, without end: consecutive mini-batches of one pass
        over the data after another, the last of a pass smaller where N is no multiple of the size
        (PyTorch's DataLoader with drop_last=False); shuffled, each pass in its own order drawn from the seed."""
        for epoch in itertools.count():
            order = list(range(self.samples))
            if self.shuffle:
                random.Random(f"derive-shuffle:{self.seed}:{epoch}").shuffle(order)
            yield from (tuple(order[i:i + self.batch]) for i in range(0, self.samples, self.batch))

    def batches(self, updates: int) -> tuple[tuple[int, ...], ...]:
        """The samples of the first ``updates`` updates."""
        return tuple(itertools.islice(self.order(), updates))

    def rate(self, group: str) -> Rational:
        """The learning rate of a layer group ("W2", "b1")."""
        return self.rates[group]


@dataclass(frozen=True)
class Spec:
    """A validated network description; all numbers are exact Rationals.

    Weights are stored as ``weights[l][j][k]`` (layer l+1, from unit k to unit j) whatever the
    convention (the spec's ``[init]`` and the JSON write them in×out where ``convention.stored_in_out``); ``biases[l]`` has one entry per unit ("neuron"), one entry ("shared"), or none, as
    ``bias.of(l)`` says.
    """

    source: str
    title: str
    description: str
    layers: tuple[int, ...]
    activations: tuple[str, ...]
    slope: Rational
    bias: Bias
    loss: str
    convention: Convention
    x: Matrix
    y: Matrix
    weights: tuple[Matrix, ...]
    biases: tuple[tuple[Rational, ...], ...]
    learning_rate: Rational     # the rate of every layer, or of the first where [train].learning_rate is a table
    steps: int                  # updates
    freeze: tuple[str, ...]
    optimizer: Optimizer        # rates per layer, batches, weight decay, momentum
    style: str
    raw: Mapping[str, Any]
    reduction: str = "mean"     # "sum": the loss sums over the samples instead of averaging (its 1/N dropped)
    # [notation].aliases: a tutorial's own names for derive's (i1 for x1, O for A2), as `derive check` reads them
    aliases: tuple[tuple[str, str], ...] = ()
    # [notation].symbols: the documents' matrices in a tutorial's names (A2 → O); each is also an alias above
    symbols: tuple[tuple[str, str], ...] = ()

    @property
    def rule(self) -> Loss:
        """The loss's registry entry as this spec uses it (summed over the samples with reduction = "sum")."""
        entry = LOSSES[self.loss]
        return entry.summed() if self.reduction == "sum" else entry

    @property
    def samples(self) -> int:
        return len(self.x)

    @property
    def groups(self) -> tuple[str, ...]:
        """The layer groups that have parameters, in order: W1, b1, W2, … (no b_l for a layer without biases)."""
        return tuple(g for l in range(1, self.depth + 1) for g in (f"W{l}", f"b{l}")
                     if g[0] == "W" or self.bias.of(l - 1) != "none")

    @property
    def depth(self) -> int:
        return len(self.layers) - 1


# -- numbers ------------------------------------------------------------------------------

def number(value: Any, source: str, field: str) -> Rational:
    """The exact Rational a spec value spells: 0.1 is 1/10, "1/3" is 1/3."""
    if isinstance(value, bool):
        raise SpecError(source, field, f"expected a number; got {_show(value)}")
    try:
        frac = _fraction(value)
    except _OutOfRange:
        frac = Fraction(2 * LARGEST)            # reported below
    except (ValueError, ZeroDivisionError, ArithmeticError):
        frac = None
    if frac is None:
        raise SpecError(source, field, f"expected a finite number (like 0.5 or \"1/3\"); got {_show(value)}")
    if abs(frac) > LARGEST:
        raise SpecError(source, field, f"expected 0 or a number between 1e-50 and 1e12 in magnitude; "
                                       f"got {_show(value)}")
    return Rational(frac.numerator, frac.denominator)


def _fraction(value: Any) -> Fraction | None:
    """The exact value of a number as the spec spells it, or None for anything that is not one."""
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return _decimal(Decimal(repr(value)))       # a Python float stands for the decimal it prints as
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Rational):
        return Fraction(int(value.p), int(value.q))
    if isinstance(value, str) and len(value) <= 100 and _NUMBER_TEXT.fullmatch(value.strip()):
        text = value.strip()
        return Fraction(text) if "/" in text else _decimal(Decimal(text))
    return None


# a number written as text: "0.5", "-2e-3", "1/3"; ASCII digits only (Python would also take "١" or "1_000")
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?\d+/\d+", re.ASCII)


class _OutOfRange(Exception):
    """A decimal too large to be a spec's number."""


def _decimal(value: Decimal) -> Fraction | None:
    """A finite decimal as a Fraction; None for nan and infinities.

    Extreme exponents are refused before the fraction is formed: 1e-999999999 would take
    minutes and gigabytes to expand.
    """
    if not value.is_finite():
        return None
    if value.is_zero():
        return Fraction(0)
    if not SMALLEST_EXPONENT <= value.adjusted() <= 12:
        raise _OutOfRange
    return Fraction(value)


def _show(value: Any) -> str:
    """A value as the TOML that spells it (2.5, true, "text", [1, 2]), shortened to one short line."""
    text = _toml(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _toml(value: Any) -> str:
    if value is None:
        return "nothing (the key is missing)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Decimal, int)):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _matrix(value: Any, rows: int, cols: int, source: str, field: str, layout: str = "") -> Matrix:
    shape = f"{rows}×{cols}"
    if not isinstance(value, list) or len(value) != rows or not all(
            isinstance(r, list) and len(r) == cols for r in value):
        got = _shape_of(value)
        expected = f"{rows} row{'s' if rows > 1 else ''} of {cols} number{'s' if cols > 1 else ''}{layout}"
        raise SpecError(source, field, f"expected a {shape} matrix ({expected}); got {got}")
    return tuple(tuple(number(v, source, f"{field}[{i}][{j}]") for j, v in enumerate(r))
                 for i, r in enumerate(value))


def _shape_of(value: Any) -> str:
    if not isinstance(value, list):
        return _show(value)
    if value and all(isinstance(r, list) for r in value):
        widths = [len(r) for r in value]
        rows = f"{len(value)} row{'s' if len(value) > 1 else ''}"
        if len(set(widths)) == 1:
            return f"{rows} of {widths[0]}"
        return f"{rows} of {', '.join(map(str, widths[:-1]))} and {widths[-1]} numbers"
    return f"a list of {len(value)}"


def _vector(value: Any, size: int, source: str, field: str) -> tuple[Rational, ...]:
    if not isinstance(value, list) or len(value) != size or any(isinstance(v, list) for v in value):
        raise SpecError(source, field, f"expected a list of {size} numbers; got {_shape_of(value)}")
    return tuple(number(v, source, f"{field}[{i}]") for i, v in enumerate(value))


def _samples(value: Any, width: int, source: str, field: str, count: int | None) -> Matrix:
    """Rows of samples; a flat list is one sample, a bare number one sample of one value.

    With one column, a flat list is read as one-value samples (``x = [0.5, -0.2]`` for a network
    with one input, ``y = [1, 0, 1]`` for three samples of a single output), the only reading that
    fits; for y its length must then match x's samples.
    """
    if not isinstance(value, list):
        value = [[value]]
    elif value and not any(isinstance(v, list) for v in value):
        value = [[v] for v in value] if width == 1 and count in (None, len(value)) else [value]
    if not value:
        raise SpecError(source, field, "expected at least one sample; got an empty list")
    rows = count if count is not None else len(value)
    if count is not None and len(value) != count:
        raise SpecError(source, field, f"expected {count} samples, one per row of [data].x; got {len(value)}")
    return _matrix(value, rows, width, source, field)


# -- tables -------------------------------------------------------------------------------

def _table(raw: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, Mapping):
        raise SpecError(source, f"[{name}]", f"expected a table; got {_show(table)}")
    allowed = TABLES[name]
    if allowed is not None:
        for key in table:
            if key not in allowed:
                raise SpecError(source, f"[{name}].{key}",
                                f"unknown key; expected one of {', '.join(sorted(allowed))}")
    return table


def _choice(table: Mapping[str, Any], key: str, options, default, source: str, field: str) -> str:
    value = table.get(key, default)
    if value not in options:
        raise SpecError(source, field, f"expected one of {', '.join(options)}; got {_show(value)}")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, low: int, high: int, source: str, field: str) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(source, field, f"expected a whole number from {low} to {high}; got {_show(value)}")
    return value


def _layers(net: Mapping[str, Any], source: str) -> tuple[int, ...]:
    layers = net.get("layers")
    if not isinstance(layers, list) or len(layers) < 2 or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layers):
        raise SpecError(source, "[network].layers",
                        f"expected a list of at least two positive unit counts, input layer first, "
                        f"like [2, 2, 1]; got {_show(layers)}")
    if len(layers) - 1 > MAX_DEPTH:
        raise SpecError(source, "[network].layers", f"expected at most {MAX_DEPTH} layers after the input "
                                                   f"layer; got {len(layers) - 1}")
    return tuple(layers)


def activation_names(value: Any, depth: int, source: str, field: str = "[network].activation") -> tuple[str, ...]:
    """One activation name for every layer, or a list of ``depth`` names; softmax only last."""
    names = [value] * depth if isinstance(value, str) else value
    if not isinstance(names, list) or len(names) != depth:
        raise SpecError(source, field, f"expected one name or a list of {depth} names, one per "
                                       f"non-input layer; got {_show(value)}")
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise SpecError(source, field, f"expected one of {', '.join(ACTIVATIONS)}; got {_show(name)}")
        if ACTIVATIONS[name].output_only and i != depth - 1:
            raise SpecError(source, field, f"expected {name} on the output layer only; "
                                           f"layer {i + 1} of {depth} asks for it")
    return tuple(names)


def _draw(rng: random.Random) -> Rational:
    """A random initial value with two decimals in [−0.5, 0.5], never 0: easy to work by hand."""
    value = 0
    while value == 0:
        value = rng.randint(-50, 50)
    return Rational(value, 100)


def _parameters(init, layers, bias, convention, source):
    if "seed" in init and (isinstance(init["seed"], bool) or not isinstance(init["seed"], int)):
        raise SpecError(source, "[init].seed", f"expected a whole number; got {_show(init['seed'])}")
    rng = random.Random(init.get("seed", 0))
    depth = len(layers) - 1
    known = {f"W{l}" for l in range(1, depth + 1)} | {"seed"}
    known |= {f"b{l}" for l in range(1, depth + 1) if bias.of(l - 1) != "none"}
    for key in init:
        if key in {f"b{l}" for l in range(1, depth + 1)} - known:
            raise SpecError(source, f"[init].{key}", f"layer {key[1:]} has no biases ([network].bias is \"none\" "
                                                    f"there); expected no {key}, or a bias kind for the layer")
        if key not in known:
            raise SpecError(source, f"[init].{key}", f"unknown parameter; expected one of "
                                                    f"{', '.join(sorted(known - {'seed'}))} or seed")
    weights: list[Matrix] = []
    biases: list[tuple[Rational, ...]] = []
    for l in range(1, depth + 1):
        rows, cols = layers[l], layers[l - 1]
        field = f"[init].W{l}"
        drawn = [[_draw(rng) for _ in range(cols)] for _ in range(rows)]
        if f"W{l}" not in init:
            weights.append(tuple(map(tuple, drawn)))
        elif convention.stored_in_out:
            given = _matrix(init[f"W{l}"], cols, rows, source, field, _layout(convention, l))
            weights.append(tuple(zip(*given)))
        else:
            weights.append(_matrix(init[f"W{l}"], rows, cols, source, field, _layout(convention, l)))
        drawn_b = [_draw(rng) for _ in range(rows)]
        field = f"[init].b{l}"
        if bias.of(l - 1) == "none":
            biases.append(())
        elif bias.of(l - 1) == "shared":
            biases.append((_shared_bias(init[f"b{l}"], source, field),) if f"b{l}" in init else (drawn_b[0],))
        else:
            biases.append(_vector(init[f"b{l}"], rows, source, field) if f"b{l}" in init else tuple(drawn_b))
    return tuple(weights), tuple(biases)


def _layout(convention: Convention, l: int) -> str:
    """Why W_l has the shape it must have, for the error that finds another: the convention stores it so."""
    if convention.stored_in_out:
        return f": one row per unit of layer {l - 1}, as convention = \"{convention}\" stores W{l} input × output"
    return f": one row per unit of layer {l}, as convention = \"column\" stores W{l} output × input"


def _shared_bias(value: Any, source: str, field: str) -> Rational:
    if isinstance(value, list):
        raise SpecError(source, field, f"the layer's bias is shared ([network].bias is \"shared\" there): expected one "
                                       f"number for the whole layer; got {_show(value)}")
    return number(value, source, field)


def _freeze(train, layers, bias, style, convention, source) -> tuple[str, ...]:
    value = train.get("freeze", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(source, "[train].freeze", f"expected a list of parameter names; got {_show(value)}")
    notation = Notation(layers, bias.kinds, style, convention)
    names = {f"W{l}" for l in range(1, len(layers))}
    names |= {f"b{l}" for l in range(1, len(layers)) if bias.of(l - 1) != "none"}
    for l in range(len(layers) - 1):
        for j in range(layers[l + 1]):
            names |= {notation.weight(l, j, k).plain for k in range(layers[l])}
            if bias.of(l) != "none":
                names.add(notation.bias_name(l, j).plain)
    for name in value:
        if name not in names:
            hint = ", ".join(sorted(names, key=lambda n: (len(n), n))[:8])
            raise SpecError(source, "[train].freeze", f"no parameter is named {_show(name)}; expected names "
                                                      f"like {hint}")
    return tuple(value)


def parse(raw: Mapping[str, Any], source: str = "<spec>") -> Spec:
    """Validate a spec given as nested mappings (the TOML structure) and return a Spec."""
    _check_top(raw, source)
    net, data = _table(raw, "network", source), _table(raw, "data", source)
    init, train = _table(raw, "init", source), _table(raw, "train", source)
    notation = _table(raw, "notation", source)

    layers = _layers(net, source)
    activations = activation_names(net.get("activation", DEFAULT_ACTIVATION), len(layers) - 1, source)
    loss = _choice(net, "loss", tuple(LOSSES), DEFAULT_LOSS, source, "[network].loss")
    problem = pairing_problem(loss, activations[-1])
    if problem:
        raise SpecError(source, "[network].loss", problem)
    bias = _bias(net, len(layers) - 1, source)
    convention = Convention(_choice(net, "convention", CONVENTIONS, "column", source, "[network].convention"))
    reduction = _choice(net, "reduction", REDUCTIONS, "mean", source, "[network].reduction")
    slope = number(net.get("slope", Rational(1, 100)), source, "[network].slope")
    style = _choice(notation, "style", STYLES, "sequential", source, "[notation].style")

    size = _size(layers, bias, source)
    x, y = _data(data, layers, size, source)
    _check_targets(loss, y, source)
    weights, biases = _parameters(init, layers, bias, convention, source)
    steps = _steps(train, size, len(x), source)
    optimizer = _optimizer(train, len(layers) - 1, bias, len(x), init.get("seed", 0), source)
    freeze = _freeze(train, layers, bias, style, convention, source)
    names = Notation(layers, bias.kinds, style, convention)
    symbols = _symbols(notation, names, source)
    aliases = _aliases(notation, names, symbols, source)
    return Spec(source, raw.get("title", ""), raw.get("description", ""), layers, activations, slope, bias,
                loss, convention, x, y, weights, biases, optimizer.rate("W1"), steps, freeze, optimizer, style, raw,
                reduction, aliases, symbols)


ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")
MAX_ALIASES = 100


def _symbols(notation: Mapping[str, Any], names: Notation, source: str) -> tuple[tuple[str, str], ...]:
    """[notation].symbols = { A2 = "O", W1 = "W_ih" }: the matrices' names in the documents and in derive check;
    each a name a user can type, none a scalar's name of the network, no two matrices named alike."""
    value = notation.get("symbols", {})
    field = "[notation].symbols"
    keys = names.matrix_keys()
    if not isinstance(value, Mapping) or len(value) > len(keys):
        raise SpecError(source, field, f'expected a table of derive\'s matrix names to yours, e.g. symbols = '
                                       f'{{ W1 = "W_ih", A2 = "O" }}; got {_show(value)}')
    scalars = names.plain_names() - set(keys)
    taken = {key: key for key in keys if key not in value}      # every matrix's name once renamed
    for key, symbol in value.items():
        if key not in keys:
            shown = _show(key).encode("unicode_escape").decode("ascii")      # a line break in a key stays one line
            raise SpecError(source, field, f"unknown key {shown}; expected derive's matrix names: "
                                           f"{', '.join(keys)}")
        where = f"{field}.{key}"
        problem = symbol_problem(symbol)
        if problem:
            raise SpecError(source, where, f"{problem}; got {_show(symbol)}")
        if symbol in scalars:
            raise SpecError(source, where, f"{symbol} is already a name of this network; choose another name")
        other = next((k for k, name in taken.items() if name == symbol), None)
        if other is not None:
            raise SpecError(source, where, f"{symbol} already names {other}; rename {other} too, or choose "
                                           f"another name")
        taken[key] = symbol
    return tuple(sorted(value.items()))


def _aliases(notation: Mapping[str, Any], names: Notation, symbols: tuple[tuple[str, str], ...],
             source: str) -> tuple[tuple[str, str], ...]:
    """[notation].aliases = { i1 = "x1", O = "A2" }: other names for the network's own; a name of the network
    is never redefined, except a matrix's (Y for the outputs, as the second seed writes them). Each of
    [notation].symbols is an alias too."""
    value = notation.get("aliases", {})
    field = "[notation].aliases"
    if not isinstance(value, Mapping) or len(value) > MAX_ALIASES:
        raise SpecError(source, field, f"expected a table of at most {MAX_ALIASES} names, e.g. "
                                       f'aliases = {{ i1 = "x1", O = "A2" }}; got {_show(value)}')
    known, own = names.plain_names(), dict(symbols)
    for alias, target in value.items():
        # escaped (a name is itself): a line break in a key that is no name must not break the one-line error
        where = f"{field}.{alias.encode('unicode_escape').decode()}"
        if not ALIAS.fullmatch(alias) or len(alias) > 24:
            raise SpecError(source, where, "expected a name of letters and digits (with _ between parts), such as i1")
        if alias in known and not alias[:1].isupper():
            raise SpecError(source, where, f"{alias} is already a name of this network")
        if alias in own.values():
            raise SpecError(source, where, f"{alias} is already a name of [notation].symbols")
        if not isinstance(target, str) or target not in known:
            hint = ", ".join(sorted(known, key=lambda n: (len(n), n))[:10])
            raise SpecError(source, where, f"expected the name of one of the network's values or matrices "
                                           f"(such as {hint}); got {_show(target)}")
    readings = {symbol: key for key, symbol in symbols}
    return tuple(sorted({**value, **readings}.items()))


def _bias(net: Mapping[str, Any], depth: int, source: str) -> Bias:
    """[network].bias: one of BIASES for every layer, or a list of one per layer after the input."""
    value = net.get("bias", "none")
    kinds = value if isinstance(value, list) else [value] * depth
    expected = f"one of {', '.join(BIASES)}, or a list of {depth} of them (one per layer after the input)"
    if len(kinds) != depth or any(not isinstance(k, str) or k not in BIASES for k in kinds):
        raise SpecError(source, "[network].bias", f"expected {expected}; got {_show(value)}")
    return Bias(tuple(kinds))


def _check_top(raw: Any, source: str) -> None:
    """The top level: a table of known tables, short title and description, a [network]."""
    if not isinstance(raw, Mapping):
        raise SpecError(source, "", f"expected a table of tables; got {_show(raw)}")
    for key in raw:
        if key not in TOP:
            raise SpecError(source, str(key), f"unknown table or key; expected {', '.join(sorted(TOP))}")
    for key in ("title", "description"):
        if not isinstance(raw.get(key, ""), str) or len(raw.get(key, "")) > 2000:
            raise SpecError(source, key, "expected a string of at most 2000 characters")
    if "network" not in raw:
        raise SpecError(source, "[network]", "missing; expected a [network] table with layers")


def _size(layers: tuple[int, ...], bias: Bias, source: str) -> int:
    """The number of parameters, at most MAX_PARAMETERS."""
    size = sum(layers[l] * layers[l - 1] + bias.count(l - 1, layers[l]) for l in range(1, len(layers)))
    if size > MAX_PARAMETERS:
        raise SpecError(source, "[network].layers", f"expected at most {MAX_PARAMETERS} parameters so the "
                                                   f"derivation finishes in reasonable time; {_show(layers)} has {size}")
    return size


def _data(data: Mapping[str, Any], layers: tuple[int, ...], size: int, source: str) -> tuple[Matrix, Matrix]:
    """[data].x and y, one row per sample, as many samples as the exact step can take."""
    for key in ("x", "y"):
        if key not in data:
            raise SpecError(source, f"[data].{key}", "missing; expected one row per sample")
    x = _samples(data["x"], layers[0], source, "[data].x", None)
    if len(x) > MAX_SAMPLES:
        raise SpecError(source, "[data].x", f"expected at most {MAX_SAMPLES} samples; got {len(x)}")
    if size * len(x) > MAX_EXACT_WORK:
        raise SpecError(source, "[data].x", f"expected at most {MAX_EXACT_WORK // size} samples for a network "
                                            f"of {size} parameters (the exact step would take too long); "
                                            f"got {len(x)}")
    return x, _samples(data["y"], layers[-1], source, "[data].y", len(x))


def _steps(train: Mapping[str, Any], size: int, samples: int, source: str) -> int:
    """[train].steps: as many updates as the float tape can take."""
    steps = _int(train, "steps", 1, 1, MAX_STEPS, source, "[train].steps")
    if size * samples * steps > MAX_FLOAT_WORK:
        most = max(1, MAX_FLOAT_WORK // (size * samples))
        raise SpecError(source, "[train].steps", f"expected at most {most} steps for {size} parameters and "
                                                 f"{samples} samples (training would take too long); got {steps}")
    return steps


def _optimizer(train: Mapping[str, Any], depth: int, bias: Bias, samples: int, seed: int, source: str) -> Optimizer:
    """[train]'s learning rate(s), batch, shuffle, weight decay and momentum."""
    decay = number(train.get("weight_decay", 0), source, "[train].weight_decay")
    if decay < 0:
        raise SpecError(source, "[train].weight_decay", f"expected 0 or a positive number; got "
                                                        f"{_show(train['weight_decay'])}")
    momentum = number(train.get("momentum", 0), source, "[train].momentum")
    if not 0 <= momentum < 1:
        raise SpecError(source, "[train].momentum", f"expected a number from 0 up to (not including) 1; got "
                                                    f"{_show(train['momentum'])}")
    return Optimizer(_rates(train, depth, bias, source), samples, _batch(train, samples, source),
                     _flag(train, "shuffle", source), seed, decay, _flag(train, "decay_biases", source), momentum)


def _flag(train: Mapping[str, Any], key: str, source: str) -> bool:
    value = train.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(source, f"[train].{key}", f"expected true or false; got {_show(value)}")
    return value


def _batch(train: Mapping[str, Any], samples: int, source: str) -> int:
    """[train].batch: "full" (every sample in each update), "online" (one) or a mini-batch size."""
    value = train.get("batch", "full")
    if value in ("full", "online"):
        return samples if value == "full" else 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= samples:
        raise SpecError(source, "[train].batch", f"expected \"full\", \"online\" or a mini-batch size from 1 to "
                                                 f"{samples} (the number of samples); got {_show(value)}")
    return value


def _rates(train: Mapping[str, Any], depth: int, bias: Bias, source: str) -> dict[str, Rational]:
    """[train].learning_rate: one positive rate, or a table of rates per layer ({W1 = 0.1, W2 = 0.05};
    a layer's biases take its weights' rate unless b1, b2, … are given)."""
    given = train.get("learning_rate", Rational(1, 10))
    groups = [f"{kind}{l}" for l in range(1, depth + 1) for kind in ("W", "b")]
    if not isinstance(given, Mapping):
        rate = _rate(given, source, "[train].learning_rate")
        return {g: rate for g in groups}
    names = {f"W{l}" for l in range(1, depth + 1)} | {f"b{l}" for l in range(1, depth + 1) if bias.of(l - 1) != "none"}
    for key in given:
        if key not in names:
            raise SpecError(source, f"[train].learning_rate.{_printable(str(key))}",
                            f"unknown layer; expected {', '.join(sorted(names, key=lambda n: (n[1:], n)))}")
    rates = {}
    for l in range(1, depth + 1):
        if f"W{l}" not in given:
            raise SpecError(source, "[train].learning_rate", f"missing W{l}; expected a rate for every layer "
                                                             f"(W1 … W{depth}; b1 … optional)")
        rates[f"W{l}"] = _rate(given[f"W{l}"], source, f"[train].learning_rate.W{l}")
        rates[f"b{l}"] = _rate(given[f"b{l}"], source, f"[train].learning_rate.b{l}") if f"b{l}" in given \
            else rates[f"W{l}"]
    return rates


def _rate(given: Any, source: str, field: str) -> Rational:
    rate = number(given, source, field)
    if rate <= 0:       # shown as the spec spells it
        raise SpecError(source, field, f"expected a positive number; got {_show(given)}")
    return rate


def _check_targets(loss: str, y: Matrix, source: str) -> None:
    if LOSSES[loss].probabilities and any(not 0 <= v <= 1 for row in y for v in row):
        raise SpecError(source, "[data].y", f"expected targets between 0 and 1 for {loss}")


# -- sources ------------------------------------------------------------------------------

def loads(text: str, source: str = "<string>") -> Spec:
    """Parse a spec from TOML text."""
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(source, "", f"not valid TOML: {exc}") from None
    return parse(raw, source)


def load(spec: str | Path) -> Spec:
    """Load a spec from a TOML file path or a built-in example's name."""
    path, name = Path(spec), _printable(str(spec))
    if path.is_file():
        try:
            text = read_text(path)
        except InputError as exc:
            raise SpecError(name, "", str(exc)) from None
        return loads(text, name)
    if str(spec) in example_names():
        return loads(example_text(str(spec)), str(spec))
    if path.exists():       # a folder, a device, a pipe: there, but not a spec
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise SpecError(name, "", f"is {kind}; expected a TOML file or a built-in example's name")
    raise SpecError(name, "", "no such file or built-in example (derive examples lists them)")


def _printable(text: str) -> str:
    """A file name as one line: control characters escaped, so an error message stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
