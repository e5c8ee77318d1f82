"""The update rule of [train]: each parameter's learning rate and weight decay, the frozen ones, a batch's 1/B."""

from __future__ import annotations

import sympy as sp
from sympy import Expr, Rational, Symbol

from derive.model.backprop import Derivation
from derive.model.spec import Spec


def frozen(d: Derivation) -> set[Symbol]:
    """The parameters that [train].freeze keeps fixed (single names, or whole layers W2/b2).

    A parameter's own name wins: with sequential per-unit biases ``b2`` is the second bias the
    document shows, not layer 2's biases (which are then frozen by listing their names).
    """
    net, names = d.network, set(d.network.spec.freeze)
    own = {net.names[p].plain: p for p in net.parameters}
    out = {own[n] for n in names if n in own}
    for l in range(len(net.weights)):
        if f"W{l + 1}" in names:
            out |= {w for row in net.weights[l] for w in row}
        if f"b{l + 1}" in names and f"b{l + 1}" not in own:
            out |= set(net.biases[l])
    return out


def learning_rates(d: Derivation) -> dict[Symbol, Rational]:
    """Every parameter's learning rate: its layer's ([train].learning_rate, one or a table per layer)."""
    net, optimizer = d.network, d.network.spec.optimizer
    rates: dict[Symbol, Rational] = {}
    for l, layer in enumerate(net.weights):
        rates.update((w, optimizer.rate(f"W{l + 1}")) for row in layer for w in row)
        rates.update((b, optimizer.rate(f"b{l + 1}")) for b in net.biases[l])
    return rates


def decayed(d: Derivation) -> dict[Symbol, Rational]:
    """λ for each parameter the weight decay λ/2 Σ w² takes in: the weights, the biases only where asked."""
    net, optimizer = d.network, d.network.spec.optimizer
    if not optimizer.weight_decay:
        return {}
    chosen = [w for layer in net.weights for row in layer for w in row]
    if optimizer.decay_biases:
        chosen += [b for b in net.parameters if b not in set(chosen)]
    return {p: optimizer.weight_decay for p in chosen}


def batch_ratio(spec: Spec, size: int) -> Rational:
    """What turns the sum of a batch's contributions e_n (each with the whole data's 1/N) into that batch's own
    loss: N/B for a loss that averages over the samples, 1 for one that sums."""
    rule, outputs = spec.rule, spec.layers[-1]
    return rule.scale(size, outputs) / rule.scale(spec.samples, outputs)


N = Symbol("N", integer=True, positive=True)        # the number of samples as a letter, in the general formulas


def mean_ratio(spec: Spec) -> Expr:
    """What writes a formula of this spec with the number of samples as the letter N: scale(N)/scale(spec's N)
    (2/N for MSE with two samples), 1 where the loss does not average or there is one sample.

    A claim (or an exam's answer) with this spec's 1/N as a number holds for this N only.
    """
    rule = spec.rule
    if spec.samples == 1 or not rule.averages:
        return sp.S.One
    return rule.scale(N, spec.layers[-1]) / rule.scale(spec.samples, spec.layers[-1])
