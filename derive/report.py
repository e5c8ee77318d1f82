"""The JSON report: the contract's keys plus every per-sample quantity, gradient formula and local factor."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from sympy import Symbol

from .errors import SpecError
from .values import exact

if TYPE_CHECKING:
    from .api import Solution
    from .backprop import Edge


def layout(solution: "Solution", values: Mapping[Symbol, Any]) -> dict[str, Any]:
    """Parameters arranged like the spec: W as [j][k] ([k][j] in the row convention), b as a list or number."""
    net, spec = solution.network, solution.spec
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


def to_json(solution: "Solution") -> dict[str, Any]:
    """The whole solution as plain JSON data; numbers are full-precision floats."""
    try:
        return _report(solution)
    except _Overflow:
        raise SpecError(solution.spec.source, "[init]", "values beyond double precision (about 1e308); expected "
                                                        "smaller initial parameters, inputs or learning rate") from None


def _report(solution: "Solution") -> dict[str, Any]:
    net, d, tr = solution.network, solution.derivation, solution.training
    first = tr.first
    names = d.names
    per_sample = [s for l in range(len(net.nets)) for s in net.nets[l] + net.activations[l]]
    adjoints = [d.adjoint[v] for v in d.backward_order]
    edges = [e for v in d.backward_order for e in d.edges[v]]     # each local factor once, loss end first
    return {
        "outputs": [[_float(env[o]) for o in net.outputs] for env in first.samples],
        "loss": _float(first.loss),
        "gradients": layout(solution, first.gradient),
        "updated": layout(solution, first.updated),
        "history": [_float(h) for h in tr.history],
        "parameters": layout(solution, first.parameters),
        "final": layout(solution, tr.final),
        "new_outputs": [[_float(env[o]) for o in net.outputs] for env in tr.after.samples],
        "new_loss": _float(tr.after.loss),
        "names": {names[p].plain: {"initial": _float(first.parameters[p]), "gradient": _float(first.gradient[p]),
                                   "updated": _float(first.updated[p])} for p in net.parameters},
        "samples": [{**{names[s].plain: _float(env[s]) for s in per_sample + [net.loss]},
                     **{names[a].plain: _float(env[a]) for a in adjoints}} for env in first.samples],
        "formulas": {names[d.adjoint[v]].plain: str(d.gradient[v]) for v in d.backward_order},
        "factors": {_local(names, e): str(e.local) for e in edges},
        "factor_values": [{_local(names, e): _float(exact(e.local.xreplace(env))) for e in edges}
                          for env in first.samples],
    }


def _local(names, e: "Edge") -> str:
    """∂child/∂parent by plain names, e.g. "dz_o/dh1"; the loss end reads "dE/do"."""
    return f"d{names[e.child].plain}/d{names[e.parent].plain}"
