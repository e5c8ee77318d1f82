"""The JSON report: the contract's keys plus every per-sample quantity, gradient formula and local factor."""

from __future__ import annotations

import math
from typing import Any, Mapping

import sympy as sp
from sympy import Symbol

from derive.numeric.rule import mean_ratio
from derive.model.backprop import Derivation, Edge
from derive.model.network import Network
from derive.model.plain import plain
from derive.model.spec import Spec
from derive.numeric.rounding import number as rounded
from derive.numeric.tape import SMALLEST_NORMAL
from derive.numeric.arithmetic import Point
from derive.numeric.values import Training, value


def layout(spec: Spec, net: Network, values: Mapping[Symbol, Any]) -> dict[str, Any]:
    """Parameters arranged like the spec: W as [j][k] ([k][j] where the convention stores W input × output), b as a
    list or number."""
    out: dict[str, Any] = {}
    for l, layer in enumerate(net.weights):
        rows = [[_float(values[w]) for w in row] for row in layer]
        out[f"W{l + 1}"] = [list(c) for c in zip(*rows)] if spec.convention.stored_in_out else rows
        if spec.bias.of(l) == "shared":
            out[f"b{l + 1}"] = _float(values[net.biases[l][0]])
        elif spec.bias.of(l) == "neuron":
            out[f"b{l + 1}"] = [_float(values[b]) for b in net.biases[l]]
    return out


BEYOND_DOUBLES_DIGITS = 17      # as many as a double carries, so the string is no less exact than a number


def _float(value: Any) -> float | str:
    """A double where the value is one; beyond doubles, its decimal value as a string ("-5.1847055285870724e694").

    JSON has no number beyond the doubles: ∂E/∂o = −y/o for an output of 1e−348 is −1e348,
    and σ′ of a unit saturated at z = 800 is below the smallest double. Writing them as 0 or
    inf would be a wrong number; refusing the whole solution would hide every right one.
    """
    number = float(value)
    if math.isfinite(number) and (number == 0) == (value == 0) and (number == 0 or abs(number) >= SMALLEST_NORMAL):
        return number
    return rounded(value, BEYOND_DOUBLES_DIGITS, inexact=True).plain


def to_json(spec: Spec, net: Network, d: Derivation, tr: Training) -> dict[str, Any]:
    """The whole solution as plain JSON data; numbers are full-precision floats (strings beyond doubles)."""
    return _report(spec, net, d, tr)


def _report(spec: Spec, net: Network, d: Derivation, tr: Training) -> dict[str, Any]:
    first = tr.first
    names = d.names
    per_sample = [s for l in range(len(net.nets)) for s in net.nets[l] + net.activations[l]]
    adjoints = [d.adjoint[v] for v in d.backward_order]
    edges = [e for v in d.backward_order for e in d.edges[v]]     # each local factor once, loss end first
    ratio = mean_ratio(spec)
    return {
        "outputs": [[_float(env[o]) for o in net.outputs] for env in first.samples],
        "loss": _float(first.objective),
        "gradients": layout(spec, net, first.objective_gradient),
        "updated": layout(spec, net, first.updated),
        # the first two from the exact steps: a loss below the doubles (1e−12541) is a string there, not 0.0
        "history": [_float(first.objective), _float(tr.after.objective)] + [_float(h) for h in tr.history[2:]],
        "parameters": layout(spec, net, first.parameters),
        "final": layout(spec, net, tr.final),
        "new_outputs": [[_float(env[o]) for o in net.outputs] for env in tr.after.samples],
        "new_loss": _float(tr.after.objective),
        "names": {names[p].plain: {"initial": _float(first.parameters[p]), "gradient": _float(first.objective_gradient[p]),
                                   "updated": _float(first.updated[p])} for p in net.parameters},
        "samples": [{**{names[s].plain: _float(env[s]) for s in per_sample + [net.loss]},
                     **{names[a].plain: _float(env[a]) for a in adjoints}} for env in first.samples],
        # an output's ∂E/∂o with N as a letter (2*(o - y)/N): the formula that holds for any batch
        "formulas": {names[d.adjoint[v]].plain: plain(sp.factor_terms(d.gradient[v] * ratio) if v in net.outputs
                                                      else d.gradient[v]) for v in d.backward_order},
        "factors": {_local(names, e): plain(e.local) for e in edges},
        "factor_values": [_factor_values(d, names, edges, env) for env in first.samples],
        **_descent(spec, net, tr),
    }


def _factor_values(d: Derivation, names: Mapping, edges: list[Edge], env: dict) -> dict[str, Any]:
    """One sample's value of every local factor, each worked out at the sample's numbers."""
    point = Point(env)
    return {_local(names, e): _float(value(d.safe(e.local), env, point=point)) for e in edges}


def _descent(spec: Spec, net: Network, tr: Training) -> dict[str, Any]:
    """How [train] updated the parameters, where it is more than full-batch descent at one rate: the samples
    of every update (0-based, in order), the gradient the first update followed, the velocity it left."""
    optimizer = spec.optimizer
    if optimizer.plain:
        return {}
    first = tr.first
    out: dict[str, Any] = {"optimizer": {
        "batch": optimizer.batch, "shuffle": optimizer.shuffle, "weight_decay": float(optimizer.weight_decay),
        "decay_biases": optimizer.decay_biases, "momentum": float(optimizer.momentum),
        "learning_rates": {g: float(optimizer.rate(g)) for g in spec.groups}}}
    if optimizer.weight_decay:       # the data's own loss and gradient, beside those with λ/2 Σ w²
        out["data_loss"], out["data_gradients"] = _float(first.loss), layout(spec, net, first.gradient)
    if optimizer.stochastic:
        out["batches"] = [list(b) for b in optimizer.batches(spec.steps)]
        out["first_update"] = {"samples": list(first.batch), "gradients": layout(spec, net, first.descent)}
    return out


def _local(names, e: Edge) -> str:
    """∂child/∂parent by plain names, e.g. "dz_o/dh1"; the loss end reads "dE/do"."""
    return f"d{names[e.child].plain}/d{names[e.parent].plain}"
