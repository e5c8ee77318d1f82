"""The symbolic network: one generic sample's inputs, parameters, net inputs, activations, loss."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from functools import cached_property, wraps
from typing import Any, Callable, Hashable, TypeVar

import sympy as sp
from sympy import Expr, Symbol

from derive.model.notation import Name, Notation
from derive.model.registry import Activation, activation
from derive.model.spec import Spec

Layered = tuple[tuple[Symbol, ...], ...]
T = TypeVar("T")

# The spec's fields that hold its numbers (data, initial values, training) or only name it: a network's symbols and
# formulas are the same whatever they are, so its kind leaves them out. A field not listed is part of the kind.
NUMBERS = frozenset({"source", "title", "description", "x", "y", "weights", "biases", "learning_rate", "steps",
                     "optimizer", "raw"})


@dataclass(frozen=True)
class Kind:
    """What a network's symbolic formulas depend on: every field of its spec but its numbers, the number of samples
    (the loss's 1/N, the batch's sums) and whether every sample's targets sum to 1 (a softmax's δ = a − y)."""

    fields: tuple[tuple[str, Hashable], ...]
    samples: int
    targets_sum_to_one: bool


def kind(spec: Spec) -> Kind:
    return Kind(tuple((f.name, getattr(spec, f.name)) for f in fields(spec) if f.name not in NUMBERS), spec.samples,
                all(sum(row) == 1 for row in spec.y))


KINDS = 64      # the kinds whose formulas a process keeps (an exam's variants are one kind; the gallery's, eight)
_KEPT: list[OrderedDict] = []       # every per_kind memo, for ``forget_kinds``


def per_kind(work: Callable[..., T]) -> Callable[..., T]:
    """``work(net, *args)`` done once for each kind of network and arguments, and kept for the last KINDS of them.

    The symbolic formulas (general equations, a loss's slope, the short δ) are the same for every network of a kind
    whatever its numbers: an exam's variants, a gallery and a notebook's cells write them once. Every number printed
    is still checked against each network's own values."""
    kept: OrderedDict[tuple[Any, ...], T] = OrderedDict()
    _KEPT.append(kept)

    @wraps(work)
    def once(net: "Network", *args: Hashable) -> T:
        key = (net.kind, *args)
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        value = kept[key] = work(net, *args)
        if len(kept) > KINDS:
            kept.popitem(last=False)
        return value
    return once


def forget_kinds() -> None:
    """Empty every per_kind memo (a test that a network's formulas do not depend on what was written before)."""
    for kept in _KEPT:
        kept.clear()


@dataclass(frozen=True, eq=False)
class Network:
    """Symbols and one-level definitions; ``definitions[s]`` uses only earlier symbols.

    Layers are 0-based here: ``weights[l][j][k]`` belongs to layer l+1 of the spec. With a
    batch, ``loss`` is one sample's contribution e_n, and E = Σₙ e_n.
    """

    spec: Spec
    notation: Notation
    inputs: tuple[Symbol, ...]
    targets: tuple[Symbol, ...]
    weights: tuple[Layered, ...]
    biases: Layered                 # per layer: one symbol per unit (shared: the same one), or ()
    nets: Layered
    activations: Layered
    loss: Symbol
    definitions: dict[Symbol, Expr]
    names: dict[Symbol, Name]

    @cached_property
    def kind(self) -> Kind:
        return kind(self.spec)

    @cached_property
    def parameters(self) -> tuple[Symbol, ...]:
        """Every weight (layer by layer, target unit first), then every distinct bias."""
        ws = [w for layer in self.weights for row in layer for w in row]
        bs = list(dict.fromkeys(b for layer in self.biases for b in layer))
        return tuple(ws + bs)

    @cached_property
    def order(self) -> tuple[Symbol, ...]:
        """The computed quantities in topological order: z and a layer by layer, then the loss."""
        return tuple(s for l in range(len(self.nets)) for s in self.nets[l] + self.activations[l]) + (self.loss,)

    @property
    def outputs(self) -> tuple[Symbol, ...]:
        return self.activations[-1]

    def layer_input(self, l: int) -> tuple[Symbol, ...]:
        """The activations that feed layer l (0-based): x for the first layer."""
        return self.inputs if l == 0 else self.activations[l - 1]

    @cached_property
    def _place(self) -> dict[Symbol, tuple[int, int]]:
        """Layer and unit of every net input and activation symbol."""
        return {s: (l, j) for l in range(len(self.nets)) for layer in (self.nets[l], self.activations[l])
                for j, s in enumerate(layer)}

    def unit(self, v: Symbol) -> tuple[int, int] | None:
        """(layer, unit), 0-based, of a net input or activation; None for anything else."""
        return self._place.get(v)

    def partials(self, child: Symbol) -> tuple[tuple[Symbol, Expr], ...]:
        """(parent, ∂child/∂parent) for every symbol ``definitions[child]`` uses directly (targets aside).

        Written in named symbols: σ' as a(1 − a), not as exponentials.
        """
        place = self._place.get(child)
        if place is None:                                   # the loss, a function of the outputs
            return tuple((o, sp.diff(self.definitions[child], o)) for o in self.outputs)
        l, j = place
        if child is self.nets[l][j]:
            # z = Σ_k w_jk a_k + b is linear: each partial is a coefficient, no differentiation needed
            below, row = self.layer_input(l), self.weights[l][j]
            return (tuple(zip(below, row)) + tuple(zip(row, below))
                    + tuple((b, sp.S.One) for b in self.biases[l][j:j + 1]))
        layer, act = self.activations[l], self.activation(l)
        if act.elementwise:         # a unit's activation depends on its own net input only
            return ((self.nets[l][j], act.partial(child, child, self.nets[l][j], True)),)
        return tuple((z, act.partial(child, layer[i], z, i == j)) for i, z in enumerate(self.nets[l]))

    def parents(self, child: Symbol) -> tuple[Symbol, ...]:
        """The symbols that ``definitions[child]`` uses directly (targets aside)."""
        return tuple(p for p, _ in self.partials(child))

    def local(self, child: Symbol, parent: Symbol) -> Expr:
        """∂child/∂parent, written in named symbols (σ' as a(1 − a), not as exponentials)."""
        return dict(self.partials(child)).get(parent, sp.S.Zero)

    def activation(self, l: int) -> Activation:
        """The registry entry of layer l's activation, with the spec's slope where it takes one."""
        return activation(self.spec.activations[l], self.spec.slope)


def build(spec: Spec) -> Network:
    """Create the symbols of ``spec`` and define every z, a and the loss in terms of them."""
    notation = Notation(spec.layers, spec.bias.kinds, spec.style, spec.convention, spec.symbols)
    names: dict[Symbol, Name] = {}

    def symbol(name: Name) -> Symbol:
        s = Symbol(name.plain, real=True)
        names[s] = name
        return s

    inputs = tuple(symbol(notation.input(k)) for k in range(spec.layers[0]))
    targets = tuple(symbol(notation.target(j)) for j in range(spec.layers[-1]))
    weights, biases, nets, acts = [], [], [], []
    definitions: dict[Symbol, Expr] = {}
    below = inputs
    for l in range(spec.depth):
        units = range(spec.layers[l + 1])
        W = tuple(tuple(symbol(notation.weight(l, j, k)) for k in range(len(below))) for j in units)
        if spec.bias.of(l) == "none":
            b: tuple[Symbol, ...] = ()
        elif spec.bias.of(l) == "shared":
            b = (symbol(notation.bias_name(l, 0)),) * len(units)
        else:
            b = tuple(symbol(notation.bias_name(l, j)) for j in units)
        z = tuple(symbol(notation.net(l, j)) for j in units)
        a = tuple(symbol(notation.activation(l, j)) for j in units)
        for j in units:
            definitions[z[j]] = sp.Add(*(W[j][k] * below[k] for k in range(len(below))), *b[j:j + 1])
        definitions.update(zip(a, activation(spec.activations[l], spec.slope).layer(z)))
        weights.append(W)
        biases.append(b)
        nets.append(z)
        acts.append(a)
        below = a
    loss = symbol(notation.loss(spec.samples))
    rule = spec.rule
    n, J = spec.samples, spec.layers[-1]
    definitions[loss] = rule.scale(n, J) * sp.Add(*(rule.term(o, y) for o, y in zip(below, targets)))
    return Network(spec, notation, inputs, targets, tuple(weights), tuple(biases), tuple(nets), tuple(acts),
                   loss, definitions, names)
