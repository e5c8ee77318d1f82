"""Numbers: the exact first step (rationals, or 60 digits where exp enters) and fast later steps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import sympy as sp
from sympy import Expr, Symbol
from sympy.printing.pycode import PythonCodePrinter

from .backprop import Derivation
from .errors import SpecError

PRECISION = 60          # significant digits kept for values that are not rational


@dataclass(frozen=True, eq=False)
class Step:
    """One gradient-descent step on the whole batch, every number exact or at PRECISION digits.

    ``samples[n]`` maps every symbol of the derivation (x, y, z, a, the loss contribution and
    each adjoint symbol) to its value for sample n.
    """

    parameters: dict[Symbol, Expr]
    samples: tuple[dict[Symbol, Expr], ...]
    loss: Expr
    gradient: dict[Symbol, Expr]
    updated: dict[Symbol, Expr]


@dataclass(frozen=True, eq=False)
class Training:
    """The first step in full, the forward pass after it, and the loss after every step."""

    first: Step
    after: Step                     # the network evaluated at the updated parameters
    history: tuple[float, ...]      # loss before step 1, then after each step
    final: dict[Symbol, float]      # parameters after the last step


def exact(value: Expr) -> Expr:
    """Keep rationals exact; evaluate anything else (σ(7/20), e^…) to PRECISION digits."""
    if value.is_Rational:
        return value
    number = value.evalf(PRECISION)
    if not number.is_number:
        raise AssertionError(f"value left symbolic: {value}")
    return number


def initial_parameters(d: Derivation) -> dict[Symbol, Expr]:
    """The spec's initial values, keyed by parameter symbol."""
    net, spec = d.network, d.network.spec
    values: dict[Symbol, Expr] = {}
    for l, layer in enumerate(net.weights):
        for j, row in enumerate(layer):
            values.update(zip(row, spec.weights[l][j]))
        for j, b in enumerate(net.biases[l]):
            values[b] = spec.biases[l][0 if spec.bias == "shared" else j]
    return values


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


def evaluate(d: Derivation, parameters: Mapping[Symbol, Expr]) -> Step:
    """Forward pass, loss and backward pass for every sample, then the batch gradient and update."""
    net, spec = d.network, d.network.spec
    samples = []
    for x, y in zip(spec.x, spec.y):
        env: dict[Symbol, Expr] = {**parameters, **dict(zip(net.inputs, x)), **dict(zip(net.targets, y))}
        for s in net.order:
            env[s] = exact(net.definitions[s].xreplace(env))
        for v in d.backward_order:
            env[d.adjoint[v]] = exact(d.gradient[v].xreplace(env))
        samples.append(env)
    loss = sp.Add(*(env[net.loss] for env in samples))
    gradient = {p: sp.Add(*(env[d.adjoint[p]] for env in samples)) for p in net.parameters}
    fixed = frozen(d)
    updated = {p: v if p in fixed else v - spec.learning_rate * gradient[p] for p, v in parameters.items()}
    return Step(dict(parameters), tuple(samples), loss, gradient, updated)


def train(d: Derivation) -> Training:
    """Step 1 exactly, then the remaining steps in double precision on the compiled gradient."""
    first = evaluate(d, initial_parameters(d))
    after = evaluate(d, first.updated)
    history = [float(first.loss), float(after.loss)]
    params = [float(after.parameters[p]) for p in d.network.parameters]
    steps = d.network.spec.steps
    if steps > 1:
        losses, params = descend(d, params, steps - 1, done=1)
        history += losses[1:]
    return Training(first, after, tuple(history), dict(zip(d.network.parameters, params)))


# -- the fast path: the same derivation, compiled to straight-line Python on floats ----------

class _FloatPrinter(PythonCodePrinter):
    """Prints our own functions as calls of the numerically stable helpers below."""

    def _print_Sigmoid(self, e):
        return f"_sigmoid({self._print(e.args[0])})"

    def _print_ReLU(self, e):
        return f"max(0.0, {self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"_softplus({self._print(e.args[0])})"

    def _print_Heaviside(self, e):
        return f"(1.0 if {self._print(e.args[0])} > 0 else 0.0)"


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _softplus(z: float) -> float:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def compile_gradient(d: Derivation) -> Callable[[Sequence[float], Sequence[float], Sequence[float]],
                                                 tuple[float, list[float]]]:
    """One sample's loss contribution and parameter gradients as a generated Python function.

    The generated code is the derivation's own tape (forward definitions, then adjoints in
    backward order) with every symbol renamed to ``v<i>``; no user text reaches it.
    """
    net = d.network
    symbols = list(net.parameters + net.inputs + net.targets + net.order) + [d.adjoint[v] for v in d.backward_order]
    rename = {s: Symbol(f"v{i}") for i, s in enumerate(symbols)}
    printer = _FloatPrinter({"fully_qualified_modules": True, "standard": "python3"})

    def assign(target: Symbol, expr: Expr) -> str:
        return f"    {rename[target]} = {printer.doprint(expr.xreplace(rename))}"

    def unpack(group: Sequence[Symbol], source: str) -> str:
        return f"    {', '.join(str(rename[s]) for s in group)}, = {source}"

    lines = ["def gradient(p, x, y):", unpack(net.parameters, "p"), unpack(net.inputs, "x"),
             unpack(net.targets, "y")]
    lines += [assign(s, net.definitions[s]) for s in net.order]
    lines += [assign(d.adjoint[v], d.gradient[v]) for v in d.backward_order]
    grads = ", ".join(str(rename[d.adjoint[p]]) for p in net.parameters)
    lines.append(f"    return {rename[net.loss]}, [{grads}]")
    namespace = {"math": math, "_sigmoid": _sigmoid, "_softplus": _softplus}
    exec(compile("\n".join(lines), "<derive gradient>", "exec"), namespace)   # our own tape only
    return namespace["gradient"]


def descend(d: Derivation, params: list[float], steps: int, done: int = 0) -> tuple[list[float], list[float]]:
    """Run ``steps`` gradient-descent steps from ``params``; the loss before and after each.

    ``done`` counts the steps already taken to reach ``params``, for the error message.
    """
    net, spec = d.network, d.network.spec
    gradient = compile_gradient(d)
    rate = float(spec.learning_rate)
    fixed = frozen(d)
    trainable = [i for i, p in enumerate(net.parameters) if p not in fixed]
    data = [([float(v) for v in x], [float(v) for v in y]) for x, y in zip(spec.x, spec.y)]
    losses = []
    try:
        for step in range(steps + 1):
            loss, total = 0.0, [0.0] * len(params)
            for x, y in data:
                e, g = gradient(params, x, y)
                loss += e
                total = [t + gi for t, gi in zip(total, g)]
            if not math.isfinite(loss):
                raise OverflowError
            losses.append(loss)
            if step < steps:
                for i in trainable:
                    params[i] -= rate * total[i]
    except (OverflowError, ValueError, ZeroDivisionError):
        raise SpecError(spec.source, "[train].learning_rate",
                        f"after step {done + len(losses)} the loss is no longer a finite double (the steps "
                        f"diverged or an output saturated); expected a smaller learning rate or fewer "
                        f"steps") from None
    return losses, params
