"""The library entry point: build a Solution from a spec path, example name, dict or keywords."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

from sympy import Expr, Symbol

from derive.derived.report import to_json
from derive.model import spec as specs
from derive.model.backprop import Derivation, derive
from derive.model.network import Network, build
from derive.numeric.rounding import Rounding, check_precision
from derive.numeric.values import Step, Training, evaluate, train

KEYWORD_TABLES = {key: table for table, keys in specs.TABLES.items() if keys for key in keys}


LATER_UPDATES = 4       # online and in mini-batches, the updates after the first that a document works out


class Solution:
    """Everything derive knows about one spec: symbols, derivation, numbers, JSON.

    >>> s = solve("linear-221")
    >>> float(s.training.first.loss)
    0.3272405
    """

    def __init__(self, spec: specs.Spec, carry: Rounding | None = None):
        self.spec = spec
        self.carry = carry          # how every value is rounded as it is computed (by hand), or None

    @cached_property
    def network(self) -> Network:
        return build(self.spec)

    @cached_property
    def derivation(self) -> Derivation:
        return derive(self.network)

    @cached_property
    def training(self) -> Training:
        return train(self.derivation, self.carry)

    @cached_property
    def first_update(self) -> "Solution":
        """The Solution the first update is worked on: this one, or where an update takes fewer samples than
        all (online, mini-batches), the first batch's samples as a whole batch of their own. Its loss is that
        batch's (the loss's definition with B in place of N), so its gradient is the one the update follows."""
        optimizer = self.spec.optimizer
        if not optimizer.stochastic:
            return self
        return Solution(self._batch_spec(next(optimizer.order())), self.carry)

    @cached_property
    def later_updates(self) -> tuple["Solution", ...]:
        """Online and in mini-batches, the updates after the first in the first pass over the data (at most
        LATER_UPDATES of them), each a Solution like ``first_update``: its batch's samples, from the parameters
        (and with momentum the velocity) that the update before it left, exactly as the first is computed."""
        optimizer = self.spec.optimizer
        if not optimizer.stochastic:
            return ()
        per_pass = -(-optimizer.samples // optimizer.batch)
        later, before = [], self.first_update
        for rows in optimizer.batches(min(self.spec.steps, per_pass, LATER_UPDATES + 1))[1:]:
            step = before.training.first
            velocity = (tuple(step.updated[p] - step.parameters[p] for p in self.network.parameters)
                        if optimizer.momentum else ())
            before = Solution(self._batch_spec(rows, step.updated, velocity), self.carry)
            later.append(before)
        return tuple(later)

    def _batch_spec(self, rows: tuple[int, ...], parameters: Mapping[Symbol, Expr] | None = None,
                    velocity: tuple[Expr, ...] = ()) -> specs.Spec:
        """The spec of one update worked alone: the samples ``rows`` as the whole batch, one step, from
        ``parameters`` (the spec's own where None) and ``velocity``."""
        spec, optimizer = self.spec, self.spec.optimizer
        batch = replace(spec, x=tuple(spec.x[n] for n in rows), y=tuple(spec.y[n] for n in rows), steps=1,
                        optimizer=replace(optimizer, samples=len(rows), batch=len(rows), shuffle=False,
                                          velocity=velocity))
        if parameters is None:
            return batch
        net = self.network
        weights = tuple(tuple(tuple(parameters[w] for w in row) for row in layer) for layer in net.weights)
        biases = tuple(tuple(parameters[b] for b in net.biases[l][:1 if spec.bias.of(l) == "shared" else None])
                       if spec.bias.of(l) != "none" else spec.biases[l] for l in range(spec.depth))
        return replace(batch, weights=weights, biases=biases)

    @cached_property
    def exact_first(self) -> Step:
        """The first step without rounding: the training's own, or recomputed where values were carried rounded.
        What the verification and the general formulas are checked on."""
        shown = self.training.first
        return shown if self.carry is None else evaluate(self.derivation, shown.parameters)

    def symbol(self, plain: str) -> Symbol:
        """The symbol with the given plain-text name (``w5``, ``h1``, ``delta_o``, ``dE/dw5``)."""
        for s, name in self.derivation.names.items():
            if name.plain == plain:
                return s
        raise KeyError(plain)

    def value(self, plain: str, sample: int = 0) -> Expr:
        """The exact value of a named quantity for the initial parameters (``dE/dw5`` sums the batch)."""
        s = self.symbol(plain)
        step = self.training.first
        if s in step.parameters:
            return step.parameters[s]
        for p in self.network.parameters:
            if self.derivation.adjoint[p] == s:
                return step.gradient[p]
        return step.samples[sample][s]

    def json(self) -> dict[str, Any]:
        """The contract's JSON object (outputs, loss, gradients, updated, history) and more."""
        return to_json(self.spec, self.network, self.derivation, self.training)

    # -- in a notebook: the text stage draws, through DISPLAYS (the engine never imports the documents)
    def show(self, part: str) -> Any:
        """One part of the worked solution for a notebook cell: a section (``"backward"``, ``"general"``, …)
        or one parameter's chain rule (``"w5"``)."""
        return _display("part")(self, part)

    def _repr_html_(self) -> str:
        return _display("text/html")(self)

    def _repr_markdown_(self) -> str:
        return _display("text/markdown")(self)

    def _repr_latex_(self) -> str:
        return _display("text/latex")(self)


# How a Solution shows itself in Jupyter: derive/text/notebook.py registers its renderers here when
# the package facade loads (derive.solve), so that this stage needs nothing from the ones above it.
DISPLAYS: dict[str, Callable[..., Any]] = {}


def _display(kind: str) -> Callable[..., Any]:
    if kind not in DISPLAYS:
        raise RuntimeError("the notebook display is not loaded: import derive (not only derive.derived) first")
    return DISPLAYS[kind]


def keywords_to_dict(**kw: Any) -> dict[str, Any]:
    """Sort keyword arguments into the spec's tables: ``layers=`` goes to [network], ``W1=`` to [init]."""
    raw: dict[str, Any] = {}
    for key, value in kw.items():
        if key in ("title", "description"):
            raw[key] = value
        else:
            raw.setdefault(KEYWORD_TABLES.get(key, "init"), {})[key] = value
    return raw


def solve(spec: str | Path | Mapping[str, Any] | specs.Spec | None = None, *, carry: int | Rounding | None = None,
          **keywords: Any) -> Solution:
    """A Solution from a TOML path, a built-in example's name, a dict, a Spec, or keywords.

    >>> solve(layers=[1, 1], activation="linear", x=[1], y=[2], W1=[[0.5]]).training.first.loss
    9/8
    """
    if isinstance(carry, int):      # solve(carry=4): four significant digits
        carry = Rounding(carry)
    if carry is not None:
        check_precision(carry)
    if isinstance(spec, specs.Spec):
        return Solution(spec, carry)
    if spec is None:
        return Solution(specs.parse(keywords_to_dict(**keywords), "<keywords>"), carry)
    if isinstance(spec, Mapping):
        return Solution(specs.parse(spec, "<dict>"), carry)
    return Solution(specs.load(spec), carry)
