"""The chain rule: ∂E/∂v for every quantity v, accumulated over v's children in one loop."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import prod

import sympy as sp
from sympy import Expr, Symbol

from derive.model.network import Network
from derive.model.notation import Name


@dataclass(frozen=True)
class Edge:
    """One local factor of the chain rule: ∂child/∂parent, in named symbols."""

    child: Symbol
    parent: Symbol
    local: Expr


@dataclass(frozen=True, eq=False)
class Derivation:
    """Every gradient of one network as a short expression in named intermediates.

    ``adjoint[v]`` is the symbol that stands for ∂E/∂v (δ for a net input), ``gradient[v]`` its
    value Σ_children ∂E/∂child · ∂child/∂v, and ``edges[v]`` those children's local factors.
    """

    network: Network
    edges: dict[Symbol, tuple[Edge, ...]]
    adjoint: dict[Symbol, Symbol]
    gradient: dict[Symbol, Expr]
    names: dict[Symbol, Name]

    @cached_property
    def backward_order(self) -> tuple[Symbol, ...]:
        """Quantities whose adjoint is computed, loss first, parameters last."""
        net = self.network
        return tuple(s for s in reversed(net.order) if s != net.loss) + net.parameters

    def path_count(self, v: Symbol) -> int:
        """How many chains lead from the loss down to v (the number of terms of the full sum)."""
        return self._counts[v]

    @cached_property
    def _counts(self) -> dict[Symbol, int]:
        counts = {self.network.loss: 1}
        for v in self.backward_order:
            counts[v] = sum(counts[e.child] for e in self.edges[v])
        return counts

    def chains(self, v: Symbol) -> list[tuple[Edge, ...]]:
        """Every chain of local factors from the loss down to v, loss end first.

        ∂E/∂v is the sum over these chains of the product of their factors. Their number grows
        with the widths of the later layers; check ``path_count`` before asking for them.
        """
        if v == self.network.loss:
            return [()]
        return [chain + (e,) for e in self.edges[v] for chain in self.chains(e.child)]

    @cached_property
    def saturation_safe(self) -> dict[Expr, Expr]:
        """1 − a, ln a and ln(1 − a) rewritten in z so that no digit is lost where a is close to 1 or 0.

        σ(z) rounds to 1 from z ≈ 37 on in doubles (z ≈ 140 at 60 digits), and 1 − a is then 0
        although σ(−z) is not; ln(1 − o) is then −∞, and a target of 1 makes (1 − y) ln(1 − o) the
        NaN 0 · ∞. Likewise 1 − tanh²z = 1/cosh²z, and a softmax is taken as a log-softmax.
        """
        net, out = self.network, dict[Expr, Expr]()
        for l, layer in enumerate(net.activations):
            out |= net.activation(l).complements(net.nets[l], layer)
        return out

    def safe(self, expr: Expr) -> Expr:
        """``expr`` with the saturation-safe forms: what to evaluate wherever a unit may saturate."""
        return expr.xreplace(self.saturation_safe)

    @cached_property
    def safe_definitions(self) -> dict[Symbol, Expr]:
        """Every quantity's definition with the saturation-safe forms."""
        return {s: self.safe(e) for s, e in self.network.definitions.items()}

    @cached_property
    def safe_gradient(self) -> dict[Symbol, Expr]:
        """Every adjoint's formula with the saturation-safe forms."""
        return {v: self.safe(e) for v, e in self.gradient.items()}

    @cached_property
    def vanishing(self) -> frozenset[Symbol]:
        """The quantities whose ∂E/∂v is identically 0, proved symbolically from a layer's constraint.

        A softmax's outputs sum to 1 for every z, so adding one number to all its net inputs
        changes nothing: ∂E/∂b of a bias shared by the layer is Σⱼ δⱼ = 0 exactly. Evaluated,
        that sum is noise in its last digits (±4e−62 at 60 digits); these are exactly 0 instead.
        """
        net, out, adjoints = self.network, set(), set(self.adjoint.values())
        for l, layer in enumerate(net.activations):
            if not net.activation(l).sums_to_one or len(layer) < 2:
                continue
            deltas = {self.adjoint[z]: self.gradient[z] for z in net.nets[l]}
            constraint = {layer[-1]: 1 - sp.Add(*layer[:-1])}
            for v in self.backward_order:
                used = self.gradient[v].free_symbols & adjoints
                if used and used <= deltas.keys() and _zero(self.gradient[v].xreplace(deltas).xreplace(constraint)):
                    out.add(v)
        return frozenset(out)

    def expanded(self, v: Symbol) -> Expr:
        """∂E/∂v as the full sum over chains of products of local factors (small networks only)."""
        return sp.Add(*(prod((e.local for e in chain), start=sp.S.One) for chain in self.chains(v)))


def _zero(expr: Expr) -> bool:
    return sp.expand(expr) == 0


def adjoint_name(net: Network, v: Symbol) -> Name:
    """δ for a net input, ∂E/∂v otherwise."""
    place = net.unit(v)
    if place is not None and v is net.nets[place[0]][place[1]]:
        return net.notation.delta(*place)
    E, name = net.names[net.loss], net.names[v]
    return Name(rf"\frac{{\partial {E.latex}}}{{\partial {name.latex}}}", f"d{E.plain}/d{name.plain}",
                f"derivative of the loss with respect to {name.plain}")


def derive(net: Network) -> Derivation:
    """Collect every local factor, then walk backwards once, summing over each node's children."""
    edges: dict[Symbol, list[Edge]] = {v: [] for v in net.order + net.parameters + net.inputs}
    for child in net.order:
        for parent, local in net.partials(child):
            edges[parent].append(Edge(child, parent, local))

    names = dict(net.names)
    adjoint: dict[Symbol, Symbol] = {net.loss: sp.S.One}
    gradient: dict[Symbol, Expr] = {net.loss: sp.S.One}
    for v in tuple(reversed(net.order[:-1])) + net.parameters:          # the chain rule, once
        gradient[v] = sp.Add(*(adjoint[e.child] * e.local for e in edges[v]))
        name = adjoint_name(net, v)
        adjoint[v] = Symbol(name.plain, real=True)
        names[adjoint[v]] = name
    return Derivation(net, {v: tuple(es) for v, es in edges.items()}, adjoint, gradient, names)

