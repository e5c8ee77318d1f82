"""The JSON report: the contract's keys plus every per-sample quantity, gradient formula and local factor."""

from __future__ import annotations

import math
from typing import Any, Mapping

from sympy import Symbol

from derive.errors import SpecError
from derive.model.backprop import Derivation, Edge
from derive.model.network import Network
from derive.model.plain import plain
from derive.model.spec import Spec
from derive.numeric.values import Training, exact


def layout(spec: Spec, net: Network, values: Mapping[Symbol, Any]) -> dict[str, Any]:
    """Parameters arranged like the spec: W as [j][k] ([k][j] in the row convention), b as a list or number."""
    out: dict[str, Any] = {}
    for l, layer in enumerate(net.weights):
        rows = [[_float(values[w]) for w in row] for row in layer]
        out[f"W{l + 1}"] = [list(c) for c in zip(*rows)] if spec.convention == "row" else rows
        if spec.bias == "shared":
            out[f"b{l + 1}"] = _float(values[net.biases[l][0]])
        elif spec.bias == "neuron":
            out[f"b{l + 1}"] = [_float(values[b]) for b in net.biases[l]]
    return out


def _float(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise _Overflow
    return number


class _Overflow(Exception):
    """A value beyond double precision, which JSON cannot carry."""


def to_json(spec: Spec, net: Network, d: Derivation, tr: Training) -> dict[str, Any]:
    """The whole solution as plain JSON data; numbers are full-precision floats."""
    try:
        return _report(spec, net, d, tr)
    except _Overflow:
        raise SpecError(spec.source, "[init]", "values beyond double precision (about 1e308); expected "
                                                        "smaller initial parameters, inputs or learning rate") from None


def _report(spec: Spec, net: Network, d: Derivation, tr: Training) -> dict[str, Any]:
    first = tr.first
    names = d.names
    per_sample = [s for l in range(len(net.nets)) for s in net.nets[l] + net.activations[l]]
    adjoints = [d.adjoint[v] for v in d.backward_order]
    edges = [e for v in d.backward_order for e in d.edges[v]]     # each local factor once, loss end first
    return {
        "outputs": [[_float(env[o]) for o in net.outputs] for env in first.samples],
        "loss": _float(first.loss),
        "gradients": layout(spec, net, first.gradient),
        "updated": layout(spec, net, first.updated),
        "history": [_float(h) for h in tr.history],
        "parameters": layout(spec, net, first.parameters),
        "final": layout(spec, net, tr.final),
        "new_outputs": [[_float(env[o]) for o in net.outputs] for env in tr.after.samples],
        "new_loss": _float(tr.after.loss),
        "names": {names[p].plain: {"initial": _float(first.parameters[p]), "gradient": _float(first.gradient[p]),
                                   "updated": _float(first.updated[p])} for p in net.parameters},
        "samples": [{**{names[s].plain: _float(env[s]) for s in per_sample + [net.loss]},
                     **{names[a].plain: _float(env[a]) for a in adjoints}} for env in first.samples],
        "formulas": {names[d.adjoint[v]].plain: plain(d.gradient[v]) for v in d.backward_order},
        "factors": {_local(names, e): plain(e.local) for e in edges},
        "factor_values": [{_local(names, e): _float(exact(e.local.xreplace(env))) for e in edges}
                          for env in first.samples],
    }


def _local(names, e: Edge) -> str:
    """∂child/∂parent by plain names, e.g. "dz_o/dh1"; the loss end reads "dE/do"."""
    return f"d{names[e.child].plain}/d{names[e.parent].plain}"
