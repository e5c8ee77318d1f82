"""`derive check`: decide whether a student's claims hold and diagnose a wrong one like a tutor.

A claim is ``LHS = RHS`` (see derive/claims.py for the syntax). The left side names a quantity of
the derivation; the right side is a number or an expression.

- A number holds when it equals the true value for the spec's data and initial parameters to
  the precision it is written with: 0.17 claims two decimals, so |true − 0.17| ≤ 0.005 (plus
  10⁻¹² for the binary noise of a calculator); an integer or a fraction claims the exact value.
- An expression holds when it equals the true quantity for *all* values of its symbols, not
  just the spec's numbers. Parameters, inputs and targets are the independent symbols; every
  other name (z, h, o, δ, E, w5', …) stands for its definition in the network. The check draws
  several random points (parameters, inputs and targets; targets summing to 1 when the spec's
  do, as cross-entropy with softmax assumes), computes every named quantity at each point by
  the derivation's own formulas at 40 digits, and compares the claim with the truth there.
  Distinct analytic expressions agree at a random point with probability zero; piecewise
  activations (ReLU) get more points so that every unit is seen on both sides of 0.
- When a claim fails, the diagnosis compares it with the typical wrong answers generated from
  the true chain of local derivatives (drop a factor, swap σ' for tanh', use x for h, drop a
  path, transpose a weight index, a constant factor such as 2 or 1/N, …), with the other
  quantities of the network (a mislabelled answer), and for numbers with hand computations that
  round their intermediate values.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cached_property
from itertools import product
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from weakref import WeakKeyDictionary

import mpmath
import sympy as sp
from sympy import Expr, Symbol

from .activations import ACTIVATIONS, LOSSES, ReLU, Sigmoid, Softplus
from .errors import ClaimError
from .latex import PlainPrinter
from .claims import (Lhs, NameRef, Rhs, SampleSum, parse_lhs, parse_rhs, split_claim,
                    tokenize)
from .values import frozen, initial_parameters

DIGITS = 40                 # working precision of every check
AGREE = mpmath.mpf("1e-25")  # relative agreement of two values that are equal
POINTS = 3                  # random points for smooth networks
PIECEWISE_POINTS = 16       # … and for networks with ReLU-like units
MAX_PATHS = 24              # chains expanded for the diagnosis; beyond, the compact δ form
MAX_CLAIMS_FILE = 1_000_000  # bytes of one --claims file
SEED = 20240917             # the random points are the same on every run
# names that stand for the loss on their own (in dE/dNAME any capital letter does)
LOSS_NAMES = frozenset({"E", "L", "C", "J", "Etotal", "Etot", "Error", "Loss", "Cost", "error", "loss", "cost"})

_MP = mpmath.MPContext()
_MP.dps = DIGITS


@dataclass(frozen=True)
class Verdict:
    """The checker's answer for one claim.

    ``expected`` is the true number (with the claim's rounding) or the correct expression;
    ``diagnosis`` one sentence naming the most likely mistake (None when the claim holds).
    """

    claim: str
    holds: bool
    expected: str
    diagnosis: str | None
    quantity: str = ""              # the left-hand side as understood, e.g. dE/dw5, o[2], w5'
    kind: str = ""                  # "number" or "expression"
    value: float | None = None      # the true value for the spec's numbers (None: one per sample)
    claimed: float | None = None    # the claimed number
    precision: str = ""             # "2 decimals", "exact", "all values of its symbols"
    mistake: str | None = None      # short key of the diagnosed mistake, e.g. missing_activation_derivative
    correct: str = ""               # the correct expression, in the claim syntax
    note: str | None = None         # a remark on a claim that holds (e.g. only because N = 2)


@dataclass(frozen=True)
class Quantity:
    """What the left-hand side names; ``symbol`` is the claim symbol whose value is the truth."""

    kind: str                 # gradient | adjoint | forward | loss | update | after | loss_after
    label: str                # as printed: dE/dw5, o[2], w5', delta_o
    symbol: Symbol
    target: Symbol            # the network symbol it is about
    per_sample: bool
    sample: int | None        # 0-based sample when one is named


@dataclass(frozen=True)
class Candidate:
    """One typical wrong answer: a short key, the reason in words, and its expression."""

    key: str
    reason: str
    expr: Expr


class _Undefined(ArithmeticError):
    """A claim's value does not exist at a point (division by 0, log 0, overflow)."""


# -- numbers -----------------------------------------------------------------------------------

def _mpf(value: Expr) -> Any:
    if value.is_Rational:
        return _MP.mpf(int(value.p)) / int(value.q)
    return _MP.mpf(str(sp.Float(value, DIGITS + 5)))


def _finite(v: Any) -> Any:
    if isinstance(v, _MP.mpc):
        if abs(v.imag) <= abs(v.real) * _MP.mpf("1e-35"):
            v = v.real
        elif not (_MP.isfinite(v.real) and _MP.isfinite(v.imag)):
            raise _Undefined
        else:
            return v
    if not _MP.isfinite(v):
        raise _Undefined
    return v


def _power(base: Any, exponent: Any) -> Any:
    if base == 0:
        if _MP.re(exponent) <= 0:
            raise _Undefined
        return _MP.mpf(0)
    if abs(exponent) > 10_000 or abs(_MP.re(exponent) * _MP.log(abs(base))) > 10_000:
        raise _Undefined
    if isinstance(exponent, _MP.mpf) and exponent == int(exponent):
        return base ** int(exponent)
    return base ** exponent


def _exp(x: Any) -> Any:
    if _MP.re(x) > 10_000:
        raise _Undefined
    return _MP.exp(x)


def _sigmoid(x: Any) -> Any:
    if abs(x) > 10_000:
        return _MP.mpf(1 if _MP.re(x) > 0 else 0)
    return 1 / (1 + _MP.exp(-x))


def _log(x: Any) -> Any:
    if x == 0:
        raise _Undefined
    return _MP.log(x)


def _truth(x: Any) -> bool:
    return _MP.re(x) > 0


def _compare(rel: Any, get: Callable, summed: Callable) -> bool:
    if rel is sp.true:
        return True
    if rel is sp.false:
        return False
    a, b = _MP.re(value(rel.lhs, get, summed)), _MP.re(value(rel.rhs, get, summed))
    return {sp.StrictGreaterThan: a > b, sp.GreaterThan: a >= b, sp.StrictLessThan: a < b,
            sp.LessThan: a <= b}[type(rel)]


def value(expr: Expr, get: Callable[[Symbol], Any], summed: Callable[[Expr], Any] | None = None) -> Any:
    """``expr`` evaluated at 40 digits with mpmath; ``get`` gives each symbol's value.

    Only the node types the parser and the engine build are known; anything else is a bug,
    not user input, so it raises TypeError. Overflow and division by zero raise _Undefined.
    """
    if expr.is_Symbol:
        return get(expr)
    if expr.is_Number:
        if expr.is_Rational:
            return _MP.mpf(int(expr.p)) / int(expr.q)
        if expr.is_Float:
            return _MP.mpf(str(expr))
        raise _Undefined
    head = type(expr)
    if head is sp.Add:
        total = _MP.mpf(0)
        for arg in expr.args:
            total += value(arg, get, summed)
        return _finite(total)
    if head is sp.Mul:
        result = _MP.mpf(1)
        for arg in expr.args:
            result *= value(arg, get, summed)
        return _finite(result)
    if head is sp.Pow:
        return _finite(_power(value(expr.base, get, summed), value(expr.exp, get, summed)))
    if head is SampleSum:
        if summed is None:
            raise TypeError("a sum over samples needs the samples")
        return summed(expr.args[0])
    if head is sp.Piecewise:
        for piece, condition in expr.args:
            if _compare(condition, get, summed):
                return value(piece, get, summed)
        raise _Undefined
    if expr is sp.E:
        return _MP.e
    if expr is sp.I:
        return _MP.mpc(0, 1)
    if expr.is_NumberSymbol:
        return _MP.mpf(str(expr.evalf(DIGITS + 5)))
    args = [value(a, get, summed) for a in expr.args]
    if head is sp.exp:
        return _finite(_exp(args[0]))
    if head is sp.log:
        return _finite(_log(args[0]))
    if head is sp.tanh:
        return _MP.tanh(args[0]) if abs(args[0]) < 10_000 else _MP.mpf(1 if _truth(args[0]) else -1)
    if head is Sigmoid:
        return _sigmoid(args[0])
    if head is ReLU:
        return args[0] if _truth(args[0]) else _MP.mpf(0)
    if head is Softplus:
        return _finite(_log(1 + _exp(args[0]))) if _MP.re(args[0]) < 100 else args[0]
    if head is sp.Heaviside:
        z = _MP.re(args[0])
        return _MP.mpf(1) if z > 0 else _MP.mpf(0) if z < 0 else (args[1] if len(args) > 1 else _MP.mpf(0.5))
    if head is sp.Abs:
        return abs(args[0])
    # SymPy may rewrite a claim into a node the checker does not model: the claim's value is
    # then unknown, which makes it fail rather than crash.
    raise _Undefined(f"cannot evaluate {head.__name__}")


def _close(a: Any, b: Any) -> bool:
    return abs(a - b) <= AGREE * max(abs(a), abs(b)) + _MP.mpf("1e-34")


def _fmt(v: Any, digits: int = 6) -> str:
    if isinstance(v, _MP.mpc):
        return f"{_MP.nstr(v.real, digits)}{'+' if v.imag >= 0 else '-'}{_MP.nstr(abs(v.imag), digits)}i"
    text = _MP.nstr(v, digits, min_fixed=-6, max_fixed=9)
    return text[:-2] if text.endswith(".0") else text


def _rounded(v: Any, decimals: int, mode=ROUND_HALF_UP) -> str:
    exact = Decimal(_MP.nstr(_MP.re(v), DIGITS, min_fixed=-DIGITS, max_fixed=DIGITS))
    return str(exact.quantize(Decimal(1).scaleb(-decimals), rounding=mode))


def _places(decimals: int) -> str:
    return {0: "a whole number", 1: "1 decimal"}.get(decimals, f"{decimals} decimals")


# -- the network as the checker sees it --------------------------------------------------------

@dataclass
class Point:
    """Values of every claim symbol at one point: batch-wide ones, and one dict per sample."""

    batch: dict[Symbol, Any]
    samples: list[dict[Symbol, Any]]


class Model:
    """Symbols, names and evaluation points of one Solution, built once and reused by every claim."""

    def __init__(self, solution):
        self.solution = solution
        net = self.net = solution.network
        d = self.d = solution.derivation
        spec = self.spec = net.spec
        self.N, self.J = spec.samples, spec.layers[-1]
        self.loss_rule = LOSSES[spec.loss]
        self.n_symbol = Symbol("N", positive=True)
        self.eta = Symbol("eta", real=True)
        self.E = net.loss if self.N == 1 else Symbol("E", real=True)
        self.plain = {s: name.plain for s, name in net.names.items()}
        self.grad = {p: Symbol(f"dE/d{self.plain[p]}", real=True) for p in net.parameters}
        forward = [s for l in range(spec.depth) for s in net.nets[l] + net.activations[l]]
        self.forward = tuple(forward)
        self.after = {s: Symbol(self.plain[s] + "'", real=True) for s in list(net.parameters) + forward + [net.loss]}
        self.after[self.E] = Symbol("E'", real=True)
        self.frozen = frozen(d)
        self.unit: dict[Symbol, tuple[str, int, int]] = {}
        for l in range(spec.depth):
            for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])):
                self.unit[z], self.unit[a] = ("z", l, j), ("a", l, j)
        self.wpos = {w: (l, j, k) for l, layer in enumerate(net.weights) for j, row in enumerate(layer)
                     for k, w in enumerate(row)}
        self.bpos = {b: (l, j) for l, layer in enumerate(net.biases) for j, b in enumerate(layer)}
        self.display: dict[Symbol, str] = {self.eta: "eta", self.n_symbol: "N"}
        for v in forward:
            self.display[d.adjoint[v]] = (net.notation.delta(*self.unit[v][1:]).plain if self.unit[v][0] == "z"
                                          else f"dE/d{self.plain[v]}")
        self.index_of: dict[Symbol, tuple[Symbol, int]] = {}
        self.entries = self._entries()
        self.printer = PlainPrinter(self.display)
        self.per_sample = frozenset(net.inputs + net.targets + tuple(forward) + (net.loss,)
                                    + tuple(d.adjoint[v] for v in forward)
                                    + tuple(self.after[s] for s in forward + [net.loss])) if self.N > 1 else frozenset()
        # symbols whose values carry the loss's 1/N: a claim using them scales with N by itself
        self.scaled = frozenset([*d.adjoint.values(), *self.grad.values(), self.E, net.loss, self.after[self.E],
                                 self.after[net.loss]]) - {sp.S.One}
        self.piecewise = any(a in ("relu", "leaky_relu") for a in spec.activations)
        self._candidates: dict[tuple, list[Candidate]] = {}
        self._memo: dict[tuple, Any] = {}
        self._rounded: dict[tuple[str, int], Point] = {}

    # -- names ----------------------------------------------------------------------------------
    def _entries(self) -> dict[str, tuple[str, Symbol]]:
        net, d = self.net, self.d
        out: dict[str, tuple[str, Symbol]] = {"N": ("const", self.n_symbol)}
        for word in ("eta", "alpha", "lr"):
            out[word] = ("const", self.eta)
        for s in net.inputs:
            out[self.plain[s]] = ("input", s)
        for s in net.targets:
            out[self.plain[s]] = ("target", s)
        for s in net.parameters:
            out[self.plain[s]] = ("param", s)
        for s in self.forward:
            out[self.plain[s]] = ("forward", s)
            if self.unit[s][0] == "a":          # Mazur's out_{h1} and net_{h1}
                l, j = self.unit[s][1:]
                out["out_" + self.plain[s]] = ("forward", s)
                out["net_" + self.plain[s]] = ("forward", net.nets[l][j])
            else:
                out[self.display[d.adjoint[s]]] = ("delta", d.adjoint[s])
        for l in range(self.spec.depth):                # a2_1, z2_1, delta2_1 also name output units
            for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])):
                for alias, entry in ((f"a{l + 1}_{j + 1}", ("forward", a)), (f"z{l + 1}_{j + 1}", ("forward", z)),
                                     (f"delta{l + 1}_{j + 1}", ("delta", d.adjoint[z]))):
                    out.setdefault(alias, entry)
        if self.N > 1:
            out[self.plain[net.loss]] = ("sample_loss", net.loss)
        return out

    def known_names(self) -> str:
        names = [n for n, (kind, _) in self.entries.items() if kind != "const" and not n.startswith(("out_", "net_"))]
        shown = names[:14]
        return ", ".join(shown) + (", …" if len(names) > len(shown) else "")

    def lookup(self, ref: NameRef, loss: str | None) -> tuple[str, Symbol, int | None]:
        """What a written name stands for; ``loss`` is the letter the claim uses for the loss (None: any)."""
        for plain, index in ref.spellings:
            if plain in self.entries:
                kind, s = self.entries[plain]
                return kind, s, index
            if plain in ("E", "Etotal", loss) or (loss is None and plain in LOSS_NAMES):
                return "loss", self.E, index
        hint = ""
        if re.fullmatch(r"[A-Z]\d*", ref.text.rstrip("'")):
            hint = "; capital names are matrices or the loss: claim one entry at a time"
        raise ClaimError(f"column {ref.column}: unknown name {ref.text!r}{hint} (this network has "
                         f"{self.known_names()})")

    def indexed(self, s: Symbol, index: int | None, ref: NameRef) -> Symbol:
        """The symbol of ``s`` for one sample: generic (None or the sample variable n) or o[k]."""
        if index is None or index == 0:
            return s
        if index > self.N:
            raise ClaimError(f"column {ref.column}: {ref.text}: there is no sample {index}; the batch has "
                             f"{self.N} sample{'s' if self.N > 1 else ''}")
        if self.N == 1:
            return s
        name = f"{self.display.get(s, s.name)}[{index}]"
        symbol = Symbol(name, real=True)
        self.index_of[symbol] = (s, index - 1)
        return symbol

    # -- points -----------------------------------------------------------------------------------
    def tape(self, params: dict[Symbol, Any], data: Sequence[tuple[Sequence[Any], Sequence[Any]]],
             rnd: Callable[[Any], Any] | None = None) -> Point:
        """Every claim symbol's value for the given parameters and data, by the derivation's formulas.

        ``rnd`` rounds each computed value, as a hand computation that writes down rounded
        intermediates does.
        """
        net, d = self.net, self.d
        r = rnd or (lambda v: v)
        rate = _mpf(self.spec.learning_rate)
        batch: dict[Symbol, Any] = {**params, self.eta: rate, self.n_symbol: _MP.mpf(self.N)}
        samples = []
        for xs, ys in data:
            env = {**params, **dict(zip(net.inputs, xs)), **dict(zip(net.targets, ys))}
            for s in net.order:
                env[s] = r(value(net.definitions[s], env.__getitem__))
            for v in d.backward_order:
                env[d.adjoint[v]] = r(value(d.gradient[v], env.__getitem__))
            samples.append(env)
        batch[self.E] = r(_MP.fsum(env[net.loss] for env in samples))
        updated = {}
        for p in net.parameters:
            batch[self.grad[p]] = g = r(_MP.fsum(env[d.adjoint[p]] for env in samples))
            updated[p] = params[p] if p in self.frozen else r(params[p] - rate * g)
            batch[self.after[p]] = updated[p]
        after_loss = []
        for env, (xs, ys) in zip(samples, data):
            new = {**updated, **dict(zip(net.inputs, xs)), **dict(zip(net.targets, ys))}
            for s in net.order:
                new[s] = r(value(net.definitions[s], new.__getitem__))
                env[self.after[s]] = new[s]
            after_loss.append(new[net.loss])
        batch[self.after[self.E]] = r(_MP.fsum(after_loss))
        return Point(batch, samples)

    @cached_property
    def spec_point(self) -> Point:
        params = {p: _mpf(v) for p, v in initial_parameters(self.d).items()}
        data = [([_mpf(v) for v in x], [_mpf(v) for v in y]) for x, y in zip(self.spec.x, self.spec.y)]
        return self.tape(params, data)

    @cached_property
    def points(self) -> list[Point]:
        """Random parameters, inputs and targets; the same on every run."""
        rng = random.Random(SEED)
        normalized = self.spec.layers[-1] > 1 and all(sum(row) == 1 for row in self.spec.y)
        out = []
        for _ in range(PIECEWISE_POINTS if self.piecewise else POINTS):
            params = {p: _MP.mpf(rng.uniform(-1.2, 1.2)) for p in self.net.parameters}
            data = []
            for _ in range(self.N):
                xs = [_MP.mpf(rng.uniform(-1.5, 1.5)) for _ in self.net.inputs]
                ys = [_MP.mpf(rng.uniform(0.05, 0.95)) for _ in self.net.targets]
                if normalized:
                    total = _MP.fsum(ys)
                    ys = [v / total for v in ys]
                data.append((xs, ys))
            out.append(self.tape(params, data))
        return out

    def rounded_point(self, mode: str, digits: int) -> Point:
        """The spec's numbers computed by hand: each intermediate rounded to ``digits`` (decimals or significant)."""
        key = (mode, digits)
        if key not in self._rounded:
            if mode == "decimals":
                scale = _MP.mpf(10) ** digits
                rnd = lambda v: _MP.nint(_MP.re(v) * scale) / scale          # noqa: E731
            else:
                rnd = lambda v: _MP.mpf(_MP.nstr(_MP.re(v), digits))         # noqa: E731
            params = {p: _mpf(v) for p, v in initial_parameters(self.d).items()}
            data = [([_mpf(v) for v in x], [_mpf(v) for v in y]) for x, y in zip(self.spec.x, self.spec.y)]
            self._rounded[key] = self.tape(params, data, rnd)
        return self._rounded[key]

    def getter(self, point: Point, n: int) -> Callable[[Symbol], Any]:
        batch, sample, index_of, samples = point.batch, point.samples[n], self.index_of, point.samples

        def get(s: Symbol) -> Any:
            if s in batch:
                return batch[s]
            if s in sample:
                return sample[s]
            base, m = index_of[s]
            return samples[m][base]
        return get

    def at(self, expr: Expr, point: Point, n: int) -> Any:
        """``expr`` at one point in the context of sample n (its generic names are sample n's)."""
        def summed(inner: Expr) -> Any:
            return _MP.fsum(value(inner, self.getter(point, m), None) for m in range(len(point.samples)))
        return value(expr, self.getter(point, n), summed)

    # -- quantities -------------------------------------------------------------------------------
    def quantity(self, lhs: Lhs) -> Quantity:
        """The quantity a left-hand side names; ClaimError for an input, a given value, a typo."""
        ref = lhs.ref
        kind, s, index = self.lookup(ref, lhs.loss if lhs.kind == "derivative" else None)
        sample = None if index in (None, 0) else index - 1
        if index is not None and index > self.N:
            self.indexed(s, index, ref)                       # raises the message
        where = "" if sample is None or self.N == 1 else f"[{sample + 1}]"
        if lhs.kind == "derivative":
            if ref.prime:
                raise ClaimError(f"column {ref.column}: derivatives after the update are not part of the derivation")
            if kind == "param":
                self._no_sample(ref, index, s)
                return Quantity("gradient", f"dE/d{self.plain[s]}", self.grad[s], s, False, None)
            if kind == "forward":
                adjoint = self.d.adjoint[s]
                return Quantity("adjoint", f"dE/d{self.plain[s]}{where}", adjoint, s, self.N > 1, sample)
            raise ClaimError(f"column {ref.column}: {ref.spellings[0][0]} is {self._what(kind)}; the derivation has "
                             f"dE/d of parameters, net inputs and activations")
        if kind == "loss":
            if index is not None:
                raise ClaimError(f"column {ref.column}: the loss E is one number for the whole batch"
                                 + ("; e[n] is sample n's part" if self.N > 1 else ""))
            return Quantity("loss_after", "E'", self.after[self.E], self.E, False, None) if ref.prime else \
                Quantity("loss", "E", self.E, self.E, False, None)
        if kind == "param":
            self._no_sample(ref, index, s)
            if not ref.prime:
                raise ClaimError(f"column {ref.column}: {self.plain[s]} is given by the spec; claim dE/d{self.plain[s]} "
                                 f"or {self.plain[s]}' (its value after the update)")
            return Quantity("update", f"{self.plain[s]}'", self.after[s], s, False, None)
        if kind in ("forward", "sample_loss"):
            if ref.prime:
                return Quantity("after", f"{self.plain[s]}'{where}", self.after[s], s, self.N > 1, sample)
            return Quantity("forward", self.plain[s] + where, s, s, self.N > 1, sample)
        if kind == "delta":
            z = next(v for v in self.forward if self.d.adjoint[v] == s)
            return Quantity("adjoint", self.display[s] + where, s, z, self.N > 1, sample)
        raise ClaimError(f"column {ref.column}: {ref.text} is {self._what(kind)}, not a quantity the "
                         f"derivation computes")

    def _no_sample(self, ref: NameRef, index: int | None, s: Symbol) -> None:
        if index:
            raise ClaimError(f"column {ref.column}: {self.plain[s]} is the same for every sample; drop the [{index}]")

    @staticmethod
    def _what(kind: str) -> str:
        return {"input": "an input given by the spec", "target": "a target given by the spec",
                "const": "a constant", "loss": "the loss", "delta": "an error signal δ",
                "sample_loss": "a sample's loss"}.get(kind, kind)

    # -- the truth and its typical mutations ---------------------------------------------------------
    def chains(self, v: Symbol) -> list[list[tuple[tuple, Expr]]] | None:
        """The chains of local factors from the loss to v, each factor with its role; None if too many."""
        if self.d.path_count(v) > MAX_PATHS:
            return None
        return [[(self.role(e), e.local) for e in chain] for chain in self.d.chains(v)]

    def role(self, edge) -> tuple:
        """What a local factor is: the loss's derivative, an activation's, a weight, an input, a bias."""
        child, parent = edge.child, edge.parent
        if child == self.net.loss:
            return ("loss", parent)
        kind, l, j = self.unit[child]
        if kind == "a":
            return ("act", l, j, self.unit[parent][2])
        if parent in self.wpos:
            return ("input", l, j, self.wpos[parent][2])
        if parent in self.bpos:
            return ("bias", l, j)
        return ("weight", l, j, self.net.layer_input(l).index(parent))

    def summed(self, q: Quantity) -> bool:
        return self.N > 1 and q.kind in ("gradient", "loss", "update", "loss_after")

    def per_sample_truth(self, q: Quantity) -> Expr:
        """The true expression for one sample (one sample's part of a batch sum)."""
        net = self.net
        if q.kind in ("gradient", "adjoint"):
            return self._chain_sum(q.target)
        if q.kind in ("forward", "loss"):
            return net.definitions[q.target if q.kind == "forward" else net.loss]
        if q.kind in ("after", "loss_after"):
            s = q.target if q.kind == "after" else net.loss
            return net.definitions[s].xreplace(self.after)
        raise AssertionError(q.kind)

    def _chain_sum(self, v: Symbol) -> Expr:
        chains = self.chains(v)
        if chains is None:
            return self.d.gradient[v]
        return sp.Add(*(sp.Mul(*(f for _, f in chain)) for chain in chains))

    def truth(self, q: Quantity) -> Expr:
        """The correct expression, written in the claim's symbols."""
        if q.kind == "update":
            p = q.target
            if p in self.frozen:
                return p
            return p - self.eta * self.truth(Quantity("gradient", "", self.grad[p], p, False, None))
        inner = self.per_sample_truth(q)
        return SampleSum(inner) if self.summed(q) else inner

    def correct_text(self, q: Quantity) -> str:
        """The correct expression as text a student can read and paste back, factors in chain order."""
        key = ("text", q.kind, q.target)
        if key not in self._memo:
            self._memo[key] = self._correct_text(q)
        return self._memo[key]

    def _correct_text(self, q: Quantity) -> str:
        if q.kind == "update":
            p = q.target
            if p in self.frozen:
                return self.plain[p]
            return f"{self.plain[p]} - eta*{self._paren(self.correct_text(Quantity('gradient', '', self.grad[p], p, False, None)))}"
        if q.kind in ("gradient", "adjoint"):
            chains = self.chains(q.target)
            text = " + ".join(self._chain_text(chain) for chain in chains or []) or "0"
            if chains is None or len(text) > 240:          # the δ recursion reads better than a long sum
                text = self.printer.doprint(self.d.gradient[q.target])
        else:
            text = self.printer.doprint(sp.factor_terms(self.per_sample_truth(q)))
        return f"sum({text})" if self.summed(q) else text

    def _chain_text(self, chain) -> str:
        factors = [self._factor(f) for _, f in chain if f != 1]
        return " * ".join(factors) or "1"

    def _factor(self, f: Expr) -> str:
        text = self.printer.doprint(sp.factor_terms(f))
        return self._paren(text) if (f.is_Add or text.startswith("-")) else text

    @staticmethod
    def _paren(text: str) -> str:
        """Parentheses around text unless it is one name, number or call."""
        if re.fullmatch(r"[\w'/\[\].]+", text):
            return text
        m = re.fullmatch(r"[a-z]+(\(.*\))", text)
        if m:
            depth = 0
            for i, ch in enumerate(m.group(1)):
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth == 0 and i < len(m.group(1)) - 1:
                    break
            else:
                return text
        return f"({text})"

    def values_of(self, key: tuple, expr: Expr, points: list[Point], contexts: list[int]) -> list[Any] | None:
        """_values, remembered under ``key`` (candidates are shared by every claim about a quantity)."""
        key = ("values", key, len(points), tuple(contexts))
        if key not in self._memo:
            self._memo[key] = _values(self, expr, points, contexts)
        return self._memo[key]

    def show(self, expr: Expr) -> str:
        return self.printer.doprint(expr)

    # -- the family of typical wrong answers ------------------------------------------------------
    def candidates(self, q: Quantity, summed: bool) -> list[Candidate]:
        """Typical wrong answers for q, most telling first; batch sums when ``summed``."""
        key = (q.kind, q.target, summed)
        if key not in self._candidates:
            self._candidates[key] = list(self._make_candidates(q, summed))
        return self._candidates[key]

    def _make_candidates(self, q: Quantity, summed: bool) -> Iterable[Candidate]:
        wrap = (lambda e: SampleSum(e)) if summed else (lambda e: e)
        if q.kind == "update":
            yield from self._update_candidates(q)
        elif q.kind in ("gradient", "adjoint"):
            chains = self.chains(q.target)
            if chains is not None:
                for c in self._chain_candidates(q, chains):
                    yield Candidate(c.key, c.reason, wrap(c.expr))
        elif q.kind == "forward":
            for c in self._forward_candidates(q.target):
                yield Candidate(c.key, c.reason, wrap(c.expr))
        elif q.kind == "loss":
            for c in self._forward_candidates(self.net.loss):
                yield Candidate(c.key, c.reason, wrap(c.expr))
        yield from self._others(q)

    def _mutate(self, chains, change: Callable[[tuple, Expr], Expr | None]) -> Expr | None:
        """The sum over chains with some factors changed; None when nothing changed."""
        changed = False
        terms = []
        for chain in chains:
            factors = []
            for role, f in chain:
                new = change(role, f)
                if new is not None and new != f:
                    changed = True
                    factors.append(new)
                else:
                    factors.append(f)
            terms.append(sp.Mul(*factors))
        return sp.Add(*terms) if changed else None

    def _chain_candidates(self, q: Quantity, chains) -> Iterable[Candidate]:
        spec = self.spec
        name = self.plain
        roles = [role for chain in chains for role, _ in chain]
        loss_factors = [f for chain in chains for role, f in chain if role[0] == "loss"]
        if loss_factors:
            f = loss_factors[0]
            o = next(role[1] for role in roles if role[0] == "loss")
            expr = self._mutate(chains, lambda r, f: sp.S.One if r[0] == "loss" else None)
            if expr is not None:
                yield Candidate("missing_loss_derivative",
                                f"the factor dE/d{name[o]} = {self.show(sp.factor_terms(f))} that comes from the loss "
                                f"is missing", expr)
        for l in reversed(range(spec.depth)):
            units = sorted({role[2] for role in roles if role[0] == "act" and role[1] == l})
            if not units:
                continue
            yield from self._activation_candidates(chains, l, units)
        yield from self._input_candidates(chains, roles)
        yield from self._weight_candidates(chains, roles)
        if len(chains) > 1:
            yield from self._path_candidates(q, chains)

    def _activation_candidates(self, chains, l: int, units: list[int]) -> Iterable[Candidate]:
        net = self.net
        act_name = self.spec.activations[l]
        act = net.activation(l)
        z0, a0 = net.nets[l][units[0]], net.activations[l][units[0]]
        who = " and ".join(self.plain[net.activations[l][j]] for j in units)
        df = act.df(z0, a0)
        what = f"{act_name}'({self.plain[z0]})"
        what += "" if self.show(df) == what else f" = {self.show(df)}"
        in_layer = lambda r: r[0] == "act" and r[1] == l           # noqa: E731
        zs, acts = net.nets[l], net.activations[l]

        def unit_df(r, f, make):
            return make(zs[r[2]], acts[r[2]]) if in_layer(r) else None

        if act_name != "linear":
            expr = self._mutate(chains, lambda r, f: sp.S.One if in_layer(r) else None)
            if expr is not None:
                yield Candidate("missing_activation_derivative",
                                f"the factor {what} from the activation of {who} is missing", expr)
        if act_name == "softmax":
            expr = self._mutate(chains, lambda r, f: sp.S.Zero if in_layer(r) and r[2] != r[3] else None)
            if expr is not None:
                yield Candidate("softmax_diagonal",
                                "the softmax couples its outputs: each o_i depends on every net input, "
                                "d(o_i)/d(z_j) = o_i*(1 - o_j) for i = j and -o_i*o_j otherwise, and you kept only the "
                                "terms with i = j", expr)
            return
        for other in ("sigmoid", "tanh", "relu"):
            if other == act_name:
                continue
            odf = ACTIVATIONS[other].df
            expr = self._mutate(chains, lambda r, f: unit_df(r, f, odf))
            if act_name == "linear":
                reason = (f"{who} is linear (its derivative is 1), but you multiplied by the derivative of {other}, "
                          f"{self.show(odf(z0, a0))}")
            else:
                reason = (f"you used the derivative of {other}, {self.show(odf(z0, a0))}, but {who} uses {act_name}, "
                          f"so the factor is {what}")
            if expr is not None:
                yield Candidate("wrong_activation_derivative", reason, expr)
        if act_name in ("sigmoid", "tanh", "softplus"):
            expr = self._mutate(chains, lambda r, f: acts[r[2]] if in_layer(r) else None)
            yield Candidate("activation_instead_of_derivative",
                            f"you multiplied by the activation {self.plain[a0]} itself instead of its derivative "
                            f"{what}", expr)
            expr = self._mutate(chains, lambda r, f: unit_df(r, f, lambda z, a: act.df(a, act.f(a))))
            yield Candidate("derivative_at_output",
                            f"the derivative is taken at the net input {self.plain[z0]}, not at the output "
                            f"{self.plain[a0]}: {what}, not {act_name}'({self.plain[a0]})", expr)
            expr = self._mutate(chains, lambda r, f: unit_df(r, f, lambda z, a: act.df(z, z)))
            yield Candidate("derivative_at_net_input",
                            f"{self.show(df)} is written with the output {self.plain[a0]}, not the net input "
                            f"{self.plain[z0]} (you wrote {self.show(act.df(z0, z0))})", expr)

    def _input_candidates(self, chains, roles) -> Iterable[Candidate]:
        net, name = self.net, self.plain
        seen = set()
        for role in roles:
            if role[0] != "input" or role in seen:
                continue
            seen.add(role)
            _, l, j, k = role
            w = net.weights[l][j][k]
            true = net.layer_input(l)[k]
            layers = [net.inputs] + [net.activations[m] for m in range(self.spec.depth)]
            same = lambda r: r == role                                 # noqa: E731
            for m, units in enumerate(layers):
                if m == l or k >= len(units):
                    continue
                alt = units[k]
                if m == 0:
                    reason = (f"the input to layer {l + 1} is {name[true]} (what {name[w]} multiplies), not the "
                              f"network input {name[alt]}")
                else:
                    reason = f"{name[w]} multiplies {name[true]}, the input of layer {l + 1}, not {name[alt]}"
                yield Candidate("wrong_input", reason,
                                self._mutate(chains, lambda r, f: alt if same(r) else None))
            own = net.activations[l][j]
            yield Candidate("wrong_input",
                            f"d{name[net.nets[l][j]]}/d{name[w]} is the input {name[true]} that {name[w]} multiplies, "
                            f"not the unit's own output {name[own]}",
                            self._mutate(chains, lambda r, f: own if same(r) else None))
            for k2, alt in enumerate(net.layer_input(l)):
                if k2 != k:
                    yield Candidate("wrong_input",
                                    f"{name[w]} multiplies {name[true]}, not {name[alt]}",
                                    self._mutate(chains, lambda r, f: alt if same(r) else None))

    def _weight_candidates(self, chains, roles) -> Iterable[Candidate]:
        net, name = self.net, self.plain
        weights = list(dict.fromkeys(r for r in roles if r[0] == "weight"))
        for l in sorted({r[1] for r in weights}, reverse=True):
            W = net.weights[l]
            here = [r for r in weights if r[1] == l]
            if all(k < len(W) and j < len(W[k]) for _, _, j, k in here):
                _, _, j, k = next((r for r in here if r[2] != r[3]), here[0])
                src, dst = net.layer_input(l)[k], net.activations[l][j]
                expr = self._mutate(chains, lambda r, f: W[r[3]][r[2]] if r[0] == "weight" and r[1] == l else None)
                if expr is not None:
                    yield Candidate("transposed_index",
                                    f"the weight indices are transposed: {name[src]} feeds {name[dst]} through "
                                    f"{name[W[j][k]]}, not {name[W[k][j]]}", expr)
        count = 0
        for role in weights:
            _, l, j, k = role
            W = net.weights[l]
            src, dst = net.layer_input(l)[k], net.activations[l][j]
            for j2, row in enumerate(W):
                for k2, w2 in enumerate(row):
                    if (j2, k2) == (j, k) or count >= 40:
                        continue
                    count += 1
                    yield Candidate("wrong_weight",
                                    f"{name[src]} feeds {name[dst]} through {name[W[j][k]]}, not {name[w2]}",
                                    self._mutate(chains, lambda r, f, w2=w2, role=role: w2 if r == role else None))

    def _path_candidates(self, q: Quantity, chains) -> Iterable[Candidate]:
        # a path is the sequence of units it passes; a softmax layer's outputs all belong to one unit's path
        def path(chain) -> tuple:
            return tuple((r[1], r[3]) for r, _ in chain if r[0] == "act")
        groups: dict[tuple, list] = {}
        for chain in chains:
            groups.setdefault(path(chain), []).append(chain)
        if len(groups) < 2:
            return
        keys = list(groups)
        common = set.intersection(*(set(k) for k in keys))
        softmax = {l for l, name in enumerate(self.spec.activations) if name == "softmax"}

        def unit(l: int, i: int) -> str:
            return self.plain[self.net.nets[l][i] if l in softmax else self.net.activations[l][i]]
        names = [" and ".join(unit(l, i) for l, i in sorted(set(k) - common, key=lambda u: (-u[0], u[1])))
                 or "another unit" for k in keys]
        total = len(keys)
        what = q.label.split("[")[0]

        def total_of(selected) -> Expr:
            return sp.Add(*(sp.Mul(*(f for _, f in c)) for k in selected for c in groups[k]))
        for i, k in enumerate(keys):
            yield Candidate("missing_path",
                            f"{what} sums over {total} paths (one through each of {', '.join(names)}); the path "
                            f"through {names[i]} is missing", total_of([k2 for k2 in keys if k2 != k]))
        if total > 2:
            for i, k in enumerate(keys):
                yield Candidate("missing_path", f"only the path through {names[i]} is counted, but {what} sums over "
                                                f"all {total} paths", total_of([k]))

    def _forward_candidates(self, s: Symbol) -> Iterable[Candidate]:
        net, name = self.net, self.plain
        definition = net.definitions[s]
        if s == net.loss:
            outputs = net.outputs
            if len(outputs) > 1:
                rule = self.loss_rule
                scale = rule.scale(self.N, self.J)
                for j, (o, y) in enumerate(zip(outputs, net.targets)):
                    rest = sp.Add(*(rule.term(o2, y2) for o2, y2 in zip(outputs, net.targets) if o2 != o))
                    yield Candidate("missing_term",
                                    f"the loss sums over all {len(outputs)} outputs; the term of {name[o]} is missing",
                                    scale * rest)
            return
        kind, l, j = self.unit[s]
        if kind == "z":
            inputs = net.layer_input(l)
            for b in net.biases[l][j:j + 1]:
                yield Candidate("missing_bias", f"{name[s]} includes the bias {name[b]}", definition.xreplace({b: 0}))
            W = net.weights[l]
            if all(j < len(W[k]) for k in range(len(inputs)) if k < len(W)) and len(inputs) <= len(W):
                swap = {W[j][k]: W[k][j] for k in range(len(inputs))}
                yield Candidate("transposed_index",
                                f"the weight indices are transposed: {name[s]} uses the weights into "
                                f"{name[net.activations[l][j]]} ({', '.join(name[W[j][k]] for k in range(len(inputs)))})",
                                definition.xreplace(swap))
            if l > 0:
                swap = {a: x for a, x in zip(inputs, net.inputs)}
                yield Candidate("wrong_input",
                                f"the inputs of layer {l + 1} are {', '.join(name[a] for a in inputs)}, "
                                f"not the network inputs", definition.xreplace(swap))
            return
        act_name = self.spec.activations[l]
        z = net.nets[l][j]
        if act_name == "softmax":
            return
        if act_name == "sigmoid":
            yield Candidate("wrong_sigmoid",
                            "the sigmoid is 1/(1 + exp(-z)), not exp(z)/(1 + exp(-z))", sp.exp(z) / (1 + sp.exp(-z)))
            yield Candidate("wrong_sigmoid", "the sigmoid has a minus sign in the exponent: 1/(1 + exp(-z))",
                            1 / (1 + sp.exp(z)))
        for other in ("linear", "sigmoid", "tanh", "relu"):
            if other == act_name:
                continue
            if other == "linear":
                reason = f"the activation is missing: {name[s]} = {act_name}({name[z]}), not the net input {name[z]} itself"
            else:
                reason = f"{name[s]} = {act_name}({name[z]}), not {other}({name[z]})"
            yield Candidate("wrong_activation", reason, ACTIVATIONS[other].f(z))

    def _update_candidates(self, q: Quantity) -> Iterable[Candidate]:
        p = q.target
        name = self.plain[p]
        g = self.truth(Quantity("gradient", "", self.grad[p], p, False, None))
        if p in self.frozen:
            yield Candidate("frozen", f"{name} is frozen ([train].freeze), so the update leaves it unchanged",
                            p - self.eta * g)
            return
        yield Candidate("update_sign", f"gradient descent steps against the gradient: {name}' = {name} - eta*dE/d{name}",
                        p + self.eta * g)
        yield Candidate("missing_learning_rate",
                        f"the step is the gradient times the learning rate eta = {self.spec.learning_rate}", p - g)
        yield Candidate("no_update", f"{name}' is {name} after one step of gradient descent", p)
        yield Candidate("missing_parameter", f"the update starts from the current value: {name}' = {name} - eta*dE/d{name}",
                        -self.eta * g)
        for c in self.candidates(Quantity("gradient", f"dE/d{name}", self.grad[p], p, False, None), self.N > 1):
            if c.key != "mislabel":
                yield Candidate(c.key, "in the gradient, " + c.reason, p - self.eta * c.expr)

    def _others(self, q: Quantity) -> Iterable[Candidate]:
        """Other quantities of the same kind: an answer computed right but for the wrong name."""
        net, d = self.net, self.d
        if q.kind == "gradient":
            for p in net.parameters:
                if p != q.target:
                    yield Candidate("mislabel", f"that is dE/d{self.plain[p]}, not {q.label}", self.grad[p])
        elif q.kind == "update":
            for p in net.parameters:
                if p != q.target:
                    yield Candidate("mislabel", f"that is the value of {self.plain[p]}', not {q.label}", self.after[p])
        elif q.kind == "adjoint":
            kind, l, j = self.unit[q.target]
            partner = net.nets[l][j] if kind == "a" else net.activations[l][j]
            p_adj = d.adjoint[partner]
            if kind == "a":
                reason = (f"that is {self.display[p_adj]} = dE/d{self.plain[partner]}, which already includes the "
                          f"activation's derivative; {q.label} stops at the output {self.plain[q.target]}")
            else:
                reason = (f"that is {self.display[p_adj]}; {q.label} = dE/d{self.plain[q.target]} also multiplies by "
                          f"the activation's derivative")
            yield Candidate("delta_confusion", reason, p_adj)
            for v in self.forward:
                if v not in (q.target, partner):
                    yield Candidate("mislabel", f"that is {self.display[d.adjoint[v]]}, not {q.label}", d.adjoint[v])
        elif q.kind in ("forward", "after"):
            s = q.target
            if q.kind == "after":
                yield Candidate("before_update", f"that is {self.plain[s]} before the update; {q.label} is computed "
                                                 f"with the updated parameters", s)
            else:
                yield Candidate("after_update", f"that is {self.plain[s]}' after the update, not {q.label}",
                                self.after[s])
            for v in self.forward:
                if v != s:
                    other = self.after[v] if q.kind == "after" else v
                    yield Candidate("mislabel", f"that is {self.show(other)}, not {q.label}", other)
        elif q.kind == "loss_after":
            yield Candidate("before_update", "that is E before the update; E' is computed with the updated parameters",
                            self.E)
        elif q.kind == "loss":
            yield Candidate("after_update", "that is E' after the update, not E", self.after[self.E])


_MODELS: WeakKeyDictionary = WeakKeyDictionary()


def model(solution) -> Model:
    """The Model of a Solution, built on first use and kept while the Solution lives."""
    m = _MODELS.get(solution)
    if m is None:
        m = _MODELS[solution] = Model(solution)
    return m


# -- reading a claim ---------------------------------------------------------------------------

class _Words:
    """The Vocabulary the parser asks about names, for one claim (knows the claim's loss letter)."""

    def __init__(self, m: Model, loss: str):
        self.m, self.loss = m, loss

    def symbol(self, ref: NameRef, in_sum: bool) -> Expr:
        m = self.m
        kind, s, index = m.lookup(ref, self.loss)
        if kind == "const":
            if ref.prime or index is not None:
                raise ClaimError(f"column {ref.column}: {ref.text}: {m.display[s]} is a constant")
            return s
        if kind == "loss":
            if index is not None:
                raise ClaimError(f"column {ref.column}: the loss E is one number for the whole batch")
            return m.after[m.E] if ref.prime else m.E
        if kind == "param":
            if index:
                raise ClaimError(f"column {ref.column}: {m.plain[s]} is the same for every sample; drop the index")
            return m.after[s] if ref.prime else s
        if kind in ("input", "target", "delta") and ref.prime:
            raise ClaimError(f"column {ref.column}: {ref.text}: only parameters and computed values change with the update")
        if ref.prime:
            s = m.after[s]
        return m.indexed(s, index, ref)

    def derivative(self, loss: str, ref: NameRef, in_sum: bool) -> Expr:
        m = self.m
        kind, s, index = m.lookup(ref, self.loss)
        if ref.prime:
            raise ClaimError(f"column {ref.column}: derivatives after the update are not part of the derivation")
        if kind == "param":
            if index:
                raise ClaimError(f"column {ref.column}: dE/d{m.plain[s]} is one number for the whole batch")
            return m.grad[s]
        if kind == "forward":
            return m.indexed(m.d.adjoint[s], index, ref)
        raise ClaimError(f"column {ref.column}: no derivative of the loss with respect to {ref.text} in this derivation")


@dataclass(frozen=True)
class _Reading:
    quantity: Quantity
    rhs: Rhs
    loss: str


def read(solution, text: str) -> _Reading:
    """Parse one claim against a solution's names; ClaimError (one line) when it cannot be read."""
    m = model(solution)
    if not isinstance(text, str):
        raise ClaimError(f"a claim must be text; got {type(text).__name__}")
    tokens = tokenize(text)
    left, right = split_claim(tokens)
    lhs = parse_lhs(left)
    q = m.quantity(lhs)
    rhs = parse_rhs(right, _Words(m, lhs.loss or "E"))
    if lhs.kind == "derivative" and lhs.loss != "E":
        q = Quantity(q.kind, q.label.replace("dE/", f"d{lhs.loss}/", 1), q.symbol, q.target, q.per_sample, q.sample)
    return _Reading(q, rhs, lhs.loss or "E")


def _echo(text: str, limit: int = 60) -> str:
    """A claim quoted in a one-line message: whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    flat = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in flat)
    return repr(flat if len(flat) <= limit else flat[:limit - 1] + "…")


# -- deciding and diagnosing -------------------------------------------------------------------

def check_claim(solution, text: str) -> Verdict:
    """Whether ``text`` ("LHS = RHS") holds for ``solution``, and if not, the most likely mistake.

    >>> from derive import solve
    >>> check_claim(solve("linear-221"), "dE/dw5 = (o - y)*h1").holds
    True

    Raises ClaimError (one line: where and why) when the claim cannot be read.
    """
    try:
        reading = read(solution, text)
    except ClaimError as exc:
        raise ClaimError(f"claim {_echo(text)}: {exc}") from None
    m = model(solution)
    constant = reading.rhs.expr.free_symbols <= {m.eta, m.n_symbol}
    if constant:
        return _check_number(m, text, reading)
    return _check_expression(m, text, reading)


def check_claims(solution, texts: Iterable[str]) -> list[Verdict]:
    """check_claim for each text, in order; the first unreadable claim raises ClaimError."""
    return [check_claim(solution, t) for t in texts]


# numbers ---------------------------------------------------------------------------------------

def _check_number(m: Model, text: str, r: _Reading) -> Verdict:
    q = r.quantity
    if q.per_sample and q.sample is None:
        raise ClaimError(f"claim {_echo(text)}: {q.label} has one value per sample ({m.N} samples); "
                         f"write {q.label}[1] … {q.label}[{m.N}]")
    n = q.sample or 0
    point = m.spec_point
    true = _MP.re(m.at(q.symbol, point, n))
    try:
        claimed = _finite(m.at(r.rhs.expr, point, n))
    except _Undefined:
        raise ClaimError(f"claim {_echo(text)}: the right-hand side is undefined") from None
    if isinstance(claimed, _MP.mpc):
        raise ClaimError(f"claim {_echo(text)}: the right-hand side is not a real number")
    decimals = r.rhs.decimals
    tol = _tolerance(decimals, true)
    holds = abs(claimed - true) <= tol
    expected = _fmt(true, 10) + (f" ({_rounded(true, decimals)} to {_places(decimals)})" if decimals is not None else "")
    precision = "exact" if decimals is None else _places(decimals)
    correct = m.correct_text(q)
    mistake = diagnosis = None
    if not holds:
        mistake, reason = _number_diagnosis(m, q, n, claimed, true, decimals, tol)
        reason = _letter(reason, r.loss)
        shown = _rounded(true, decimals) if decimals is not None else _fmt(true, 10)
        diagnosis = _sentence(reason, f"{q.label} = {shown}" + (f" ({_fmt(true, 10)})" if decimals is not None else ""))
    return Verdict(text, holds, expected, diagnosis, q.label, "number", float(true), float(claimed), precision,
                   mistake, correct, None)


def _letter(reason: str, loss: str) -> str:
    """Name the loss with the student's letter (dL/dw5 when they wrote L)."""
    return reason if loss == "E" else reason.replace("dE/d", f"d{loss}/d")


def _tolerance(decimals: int | None, true: Any) -> Any:
    tiny = _MP.mpf("1e-12") * max(1, abs(true))
    if decimals is None:
        return _MP.mpf("1e-30") * max(1, abs(true))
    return _MP.mpf(5) / _MP.mpf(10) ** (decimals + 1) + tiny


def _number_diagnosis(m: Model, q: Quantity, n: int, claimed, true, decimals, tol) -> tuple[str, str]:
    """The most likely mistake behind a wrong number: rounding, a typical wrong chain, a mislabel, a factor."""
    shown = _fmt(claimed, 10)
    if decimals is not None:
        cut = _rounded(true, decimals, ROUND_DOWN) == _rounded(claimed, decimals) and decimals > 0
        if tol > abs(claimed) / 20 and not cut:
            return "imprecise", (f"{shown} has too few significant digits to tell what went wrong; "
                                 f"give more decimals or use --explain")
        hand = _hand_rounding(m, q, n, claimed, true, tol)
        if hand:
            also = " (or the true value cut off instead of rounded)" if cut else ""
            return "rounded_intermediates", hand + also
        if cut:
            return "rounding", (f"{shown} is the true value {_fmt(true, 10)} cut off after {_places(decimals)}; "
                                f"rounded it is {_rounded(true, decimals)}")
        for fewer in range(decimals - 1, -1, -1):
            if Decimal(_rounded(true, fewer)) == Decimal(_rounded(claimed, decimals)):
                return "rounding", (f"{shown} is the value rounded to {_places(fewer)}, but writing {shown} claims "
                                    f"{_places(decimals)}, and to {_places(decimals)} it is {_rounded(true, decimals)}")
    point = m.spec_point
    matches = []
    for i, c in enumerate(_number_candidates(m, q)):
        found = m.values_of((q.kind, q.target, q.sample, "number", i), c.expr, [point], [n])
        if found is None:
            continue
        v = _MP.re(found[0])
        if abs(v - claimed) <= tol < abs(v - true):
            if c.key != "mislabel":
                return c.key, c.reason
            matches.append(m.show(c.expr))
    if matches:
        others = f" (and of {', '.join(matches[1:])})" if len(matches) > 1 else ""
        return "mislabel", f"{shown} is the value of {matches[0]}{others}, not of {q.label}"
    factor = _factor_match(m, q, claimed, true, tol)
    if factor:
        return factor
    return "unknown", (f"{shown} matches none of the usual mistakes (it is off by {_fmt(claimed - true, 3)}); "
                       f"work through the chain with --explain")


def _number_candidates(m: Model, q: Quantity) -> list[Candidate]:
    """Structural mistakes first, then other quantities (mislabels) last."""
    cands = m.candidates(q, m.summed(q))
    return [c for c in cands if c.key not in ("mislabel",)] + [c for c in cands if c.key == "mislabel"] + \
        _same_number_other_samples(m, q)


def _same_number_other_samples(m: Model, q: Quantity) -> list[Candidate]:
    if q.sample is None or m.N == 1 or q.kind not in ("forward", "adjoint", "after"):
        return []
    return [Candidate("wrong_sample", f"that is {q.label.split('[')[0]} of sample {k + 1}, not of sample {q.sample + 1}",
                      m.indexed(q.symbol, k + 1, NameRef("", (), False, 0)))
            for k in range(m.N) if k != q.sample]


def _hand_rounding(m: Model, q: Quantity, n: int, claimed, true, tol) -> str | None:
    """A hand computation that rounds every intermediate value: does it give the claimed number?"""
    for mode, digits in [("decimals", k) for k in range(1, 7)] + [("significant", k) for k in range(2, 6)]:
        point = m.rounded_point(mode, digits)
        try:
            v = _MP.re(m.at(q.symbol, point, n))
        except _Undefined:
            continue
        if abs(v - claimed) <= tol:
            how = _places(digits) if mode == "decimals" else f"{digits} significant digits"
            return (f"{_fmt(claimed, 10)} is what you get when the intermediate values are rounded to {how} "
                    f"before they are used again")
    return None


# expressions -----------------------------------------------------------------------------------

def _loose(m: Model, expr: Expr) -> bool:
    """Does expr use a per-sample name outside every sum over samples?"""
    if isinstance(expr, SampleSum):
        return False
    if expr.is_Symbol:
        return expr in m.per_sample
    return any(_loose(m, a) for a in expr.args)


def _contexts(m: Model, q: Quantity, expr: Expr) -> list[int]:
    if q.sample is not None:
        return [q.sample]
    if q.per_sample or _loose(m, expr):
        return list(range(m.N))
    return [0]


def _values(m: Model, expr: Expr, points: list[Point], contexts: list[int]) -> list[Any] | None:
    """expr at every point and sample context; None when it is undefined somewhere."""
    try:
        return [m.at(expr, p, n) for p in points for n in contexts]
    except _Undefined:
        return None


def _all_close(a: list[Any] | None, b: list[Any] | None) -> bool:
    return a is not None and b is not None and all(_close(x, y) for x, y in zip(a, b))


def _check_expression(m: Model, text: str, r: _Reading) -> Verdict:
    q, expr = r.quantity, r.rhs.expr
    contexts = _contexts(m, q, expr)
    points = m.points
    truth = m.values_of((q.kind, q.target, q.sample, "truth"), q.symbol, points, contexts)
    claim = _values(m, expr, points, contexts)
    holds = _all_close(claim, truth)
    correct = m.correct_text(q)
    value_here = None if (q.per_sample and q.sample is None) else float(_MP.re(m.at(q.symbol, m.spec_point, q.sample or 0)))
    note = mistake = diagnosis = None
    if holds:
        note = _generality_note(m, q, expr, contexts)
    else:
        mistake, reason = _expression_diagnosis(m, q, expr, contexts, claim, truth)
        reason = _letter(reason, r.loss)
        diagnosis = _sentence(reason, f"{q.label} = {correct}")
    return Verdict(text, holds, correct, diagnosis, q.label, "expression", value_here, None,
                   "all values of its symbols", mistake, correct, note)


def _expression_diagnosis(m: Model, q: Quantity, expr: Expr, contexts, claim, truth) -> tuple[str, str]:
    points = m.points
    for key, reason, repaired in _repairs(expr, lambda e: m._paren(m.show(e))):
        if _all_close(_values(m, repaired, points, contexts), truth):
            return key, reason
    if claim is None:
        return "undefined", "the expression is undefined for some values of its symbols (a division by zero or log 0)"
    loose = m.summed(q) and _loose(m, expr)
    if loose:
        part = m.per_sample_truth(q) if q.kind != "update" else None
        if part is not None and _all_close(claim, m.values_of((q.kind, q.target, "part"), part, points, contexts)):
            return "missing_sum", (f"that is one sample's part; {q.label} sums it over the {m.N} samples: "
                                   f"sum({m.correct_text(q)[4:-1] if m.correct_text(q).startswith('sum(') else m.correct_text(q)})")
    summed = m.summed(q) and not loose
    for i, c in enumerate(m.candidates(q, summed)):
        if _all_close(claim, m.values_of((q.kind, q.target, summed, i), c.expr, points, contexts)):
            extra = f", and the sum over the {m.N} samples is missing" if loose else ""
            return c.key, c.reason + extra
    factor = _ratio(m, q, claim, truth)
    if factor:
        return factor
    here = _values(m, expr, [m.spec_point], [q.sample or 0] if not (q.per_sample or loose) else list(range(m.N)))
    there = _values(m, q.symbol, [m.spec_point], [q.sample or 0] if not (q.per_sample or loose) else list(range(m.N)))
    if _all_close(here, there):
        return "not_general", ("it gives the right value for this spec's numbers but not for other values of its "
                               "symbols, so it is not the general formula")
    return "unknown", "it is not equal to the true expression and matches none of the usual mistakes"


def _generality_note(m: Model, q: Quantity, expr: Expr, contexts) -> str | None:
    """A claim that holds only because of this spec's N (e.g. 2/N = 1 with two samples)."""
    if q.kind not in ("gradient", "adjoint", "loss", "update") or m.N == 1 or expr.free_symbols & m.scaled:
        return None
    rule = m.loss_rule
    other = m.N + 1
    ratio = rule.scale(other, m.J) / rule.scale(m.N, m.J)
    if ratio == 1:
        return None
    points = m.points[:2]
    changed = []
    for p in points:
        batch = dict(p.batch)
        batch[m.n_symbol] = _MP.mpf(other)
        changed.append(Point(batch, p.samples))
    try:
        claim = [m.at(expr, p, n) for p in changed for n in contexts]
    except _Undefined:
        return None
    if q.kind == "update":
        truth = [p.batch[q.target] - p.batch[m.eta] * _mpf(ratio) * (p.batch[q.target] - m.at(q.symbol, p, n)) /
                 p.batch[m.eta] for p in points for n in contexts]
    else:
        truth = [_mpf(ratio) * m.at(q.symbol, p, n) for p in points for n in contexts]
    if _all_close(claim, truth):
        return None
    formula = f"; in general {q.label} = ({m.N}/N)*{m._paren(m.correct_text(q))}" if q.kind != "update" else ""
    return f"this holds for this spec's N = {m.N} samples only, because the loss's 1/N changes with N{formula}"


def _repairs(expr: Expr, show: Callable[[Expr], str]) -> list[tuple[str, str, Expr]]:
    """Known wrong formulas written inside a claim, each with the claim as it should have been."""
    found: list[tuple[str, str]] = []

    def fix(e: Expr) -> Expr:
        if not e.args:
            return e
        e = e.func(*(fix(a) for a in e.args)) if not isinstance(e, SampleSum) else SampleSum(fix(e.args[0]))
        if e.is_Mul:
            factors = list(e.args)
            for f in factors:
                if isinstance(f, sp.exp):
                    u = f.args[0]
                    target = (1 + sp.exp(-u)) ** -1
                    if target in factors:
                        u_ = show(u)
                        found.append(("wrong_sigmoid", f"exp({u_})/(1 + exp(-{u_})) is not the sigmoid: "
                                                       f"sigmoid({u_}) = 1/(1 + exp(-{u_}))"))
                        rest = list(factors)
                        rest.remove(f)
                        rest.remove(target)
                        return sp.Mul(*rest) * Sigmoid(u)
        if e.is_Pow and e.exp == -1 and e.base.is_Add and len(e.base.args) == 2 and sp.S.One in e.base.args:
            other = next(a for a in e.base.args if a != 1)
            if isinstance(other, sp.exp) and not other.args[0].could_extract_minus_sign():
                u_ = show(other.args[0])
                found.append(("wrong_sigmoid", f"the sigmoid has a minus sign in the exponent: "
                                               f"sigmoid({u_}) = 1/(1 + exp(-{u_}))"))
                return Sigmoid(other.args[0])
        return e

    repaired = fix(expr)
    return [(key, reason, repaired) for key, reason in found[:1]]


# constant factors --------------------------------------------------------------------------------

def _factor_parts(m: Model) -> list[tuple[Fraction, int, str]]:
    """Single mistaken factors (the claim is c × the truth), each with its cost and its reason."""
    rule = m.spec.loss
    squared = rule in ("half_sse", "sse", "mse", "quadratic")
    half = rule in ("half_sse", "quadratic")
    mean_n = rule in ("mse", "quadratic", "bce", "cross_entropy")
    mean_j = rule in ("mse", "bce")
    parts = []
    if squared:
        parts.append((Fraction(1, 2), 1, "the factor 2 from differentiating the square is missing"))
        parts.append((Fraction(2), 1 if half else 2,
                      "there is an extra factor 2: the ½ in front of the loss cancels the 2 from the square"
                      if half else "there is an extra factor 2"))
    else:
        parts += [(Fraction(1, 2), 2, "a factor 2 is missing"), (Fraction(2), 2, "there is an extra factor 2")]
    if m.N > 1:
        parts.append((Fraction(m.N), 1 if mean_n else 2,
                      f"the 1/N from averaging over the N = {m.N} samples is missing" if mean_n
                      else f"there is an extra factor N = {m.N}"))
        parts.append((Fraction(1, m.N), 2 if mean_n else 1,
                      f"there is an extra 1/N: this loss sums over the {m.N} samples, it does not average"
                      if not mean_n else f"there is an extra 1/N = 1/{m.N}"))
    if m.J > 1:
        parts.append((Fraction(m.J), 1 if mean_j else 2,
                      f"the 1/J from averaging over the J = {m.J} outputs is missing" if mean_j
                      else f"there is an extra factor J = {m.J}"))
        parts.append((Fraction(1, m.J), 2, f"there is an extra 1/J = 1/{m.J}"))
    return parts


def _factor_explanations(m: Model, q: Quantity) -> list[tuple[Fraction, str]]:
    """Every factor c (sign, 2, N, J and their products) the claim may be off by, best explanation first."""
    if q.kind not in ("gradient", "adjoint", "loss", "update"):
        options: list[tuple[Fraction, int, list[str]]] = [(Fraction(1), 0, [])]
    else:
        parts = _factor_parts(m)
        options = [(Fraction(1), 0, [])]
        for size in (1, 2):
            for combo in product(parts, repeat=size):
                if size == 2 and combo[0][2] >= combo[1][2]:
                    continue
                c = Fraction(1)
                for f, _, _ in combo:
                    c *= f
                options.append((c, sum(cost for _, cost, _ in combo), [r for _, _, r in combo]))
    out: dict[Fraction, tuple[int, str]] = {}
    for sign in (1, -1):
        for c, cost, reasons in options:
            if c == 1 and sign == 1:
                continue
            words = (["the sign is flipped" + _sign_hint(m, q)] if sign < 0 else []) + reasons
            total = cost + (0 if sign > 0 else 1)
            key = c * sign
            text = " and ".join(words)
            if key not in out or out[key][0] > total:
                out[key] = (total, text)
    return [(c, text) for c, (cost, text) in sorted(out.items(), key=lambda kv: (kv[1][0], kv[0]))]


def _sign_hint(m: Model, q: Quantity) -> str:
    if q.kind == "update":
        return ""
    if m.spec.loss in ("half_sse", "sse", "mse", "quadratic"):
        return " (the derivative of (y - o)^2 with respect to o is -2*(y - o) = 2*(o - y))"
    return ""


def _ratio(m: Model, q: Quantity, claim, truth) -> tuple[str, str] | None:
    """When claim / truth is the same constant everywhere: which factor, and why."""
    if q.kind == "update":
        p = q.target
        ps = [pt for pt in m.points for _ in range(len(claim) // len(m.points))]
        implied = [(pt.batch[p] - c) / pt.batch[m.eta] for pt, c in zip(ps, claim)]
        grad = [pt.batch[m.grad[p]] for pt in ps]
        found = _ratio(m, Quantity("gradient", f"dE/d{m.plain[p]}", m.grad[p], p, False, None), implied, grad)
        return (found[0], "in the gradient, " + found[1]) if found else None
    ratios = [c / t for c, t in zip(claim, truth) if abs(t) > _MP.mpf("1e-30")]
    if not ratios or not all(_close(r, ratios[0]) for r in ratios):
        return None
    r0 = _MP.re(ratios[0])
    c = Fraction(_MP.nstr(r0, 30, min_fixed=-40, max_fixed=40)).limit_denominator(10_000)
    if abs(_MP.mpf(c.numerator) / c.denominator - r0) > _MP.mpf("1e-20") * max(1, abs(r0)):
        return None
    for factor, text in _factor_explanations(m, q):
        if factor == c:
            return ("sign" if c == -1 else "factor"), text
    return "factor", f"it is off by a constant factor {c}"


def _factor_match(m: Model, q: Quantity, claimed, true, tol) -> tuple[str, str] | None:
    """A number that is the true value times a typical factor (sign, 2, N, …), to its precision."""
    if q.kind == "update":
        p = q.target
        point = m.spec_point
        eta, start, g = point.batch[m.eta], point.batch[p], point.batch[m.grad[p]]
        gq = Quantity("gradient", f"dE/d{m.plain[p]}", m.grad[p], p, False, None)
        for c, text in _factor_explanations(m, gq):
            v = start - eta * _mpf(sp.Rational(c.numerator, c.denominator)) * g
            if abs(v - claimed) <= tol and abs(v - true) > tol:
                return ("sign" if c == -1 else "factor"), "in the gradient, " + text
        return None
    for c, text in _factor_explanations(m, q):
        v = true * c.numerator / c.denominator
        if abs(v - claimed) <= tol and abs(v - true) > tol:
            return ("sign" if c == -1 else "factor"), text
    return None


_ENGLISH = {"the", "there", "that", "you", "it", "in", "only", "gradient", "a", "this"}


def _sentence(reason: str, correct: str) -> str:
    """One sentence: the mistake, then the correct expression or value."""
    first = reason.split(" ", 1)[0]
    if first in _ENGLISH:
        reason = reason[:1].upper() + reason[1:]
    return f"{reason}; {correct}."


# -- explaining the true derivation ----------------------------------------------------------------

def explain(solution, text: str) -> str:
    """The correct derivation of the quantity a claim names, in plain text (chain, formula, numbers)."""
    r = read(solution, text)
    return explain_quantity(model(solution), r.quantity)


def explain_quantity(m: Model, q: Quantity) -> str:
    net, d = m.net, m.d
    n = q.sample or 0
    point = m.spec_point
    lines = []
    label = q.label

    def numbers(expr: Expr, k: int) -> str:
        get = m.getter(point, k)
        values = {}
        for s in expr.free_symbols:
            v = _MP.re(get(s))
            values[s] = f"({_fmt(v, 6)})" if v < 0 else _fmt(v, 6)
        return PlainPrinter({**m.display, **values}).doprint(expr)

    if q.kind in ("gradient", "adjoint"):
        v = q.target
        chains = d.chains(v) if d.path_count(v) <= MAX_PATHS else None
        if chains is not None:
            letter = label[1] if label.startswith("d") else "E"
            symbolic = " + ".join(" * ".join(f"d{letter if e.child == net.loss else m.plain[e.child]}/"
                                             f"d{m.plain[e.parent]}" for e in chain) for chain in chains)
            lines.append(f"{label} = {symbolic}")
            lines.append(f"{' ' * len(label)} = {m.correct_text(q)}")
        else:
            lines.append(f"{label} = {m.show(d.gradient[v])}   (the δ recursion; {d.path_count(v)} paths)")
        samples = range(m.N) if m.summed(q) else [n]
        for k in samples:
            terms = (" + ".join(" * ".join(m._paren(numbers(e.local, k)) for e in chain if e.local != 1) or "1"
                                for chain in chains) if chains else numbers(d.gradient[v], k))
            prefix = f"sample {k + 1}: " if m.summed(q) else ""
            per = m.at(d.adjoint[v], point, k) if m.summed(q) else m.at(q.symbol, point, k)
            lines.append(f"{' ' * len(label)}   {prefix}{terms} = {_fmt(per, 8)}")
        if m.summed(q):
            lines.append(f"{label} = sum over the {m.N} samples = {_fmt(m.at(q.symbol, point, 0), 10)}")
        else:
            lines.append(f"{label} = {_fmt(m.at(q.symbol, point, n), 10)}")
    elif q.kind == "update":
        p = q.target
        b = point.batch
        if p in m.frozen:
            lines.append(f"{label} = {m.plain[p]} = {_fmt(b[p], 10)}   ({m.plain[p]} is frozen)")
        else:
            lines.append(f"{label} = {m.plain[p]} - eta*dE/d{m.plain[p]}")
            lines.append(f"{' ' * len(label)} = {_fmt(b[p], 10)} - {_fmt(b[m.eta], 6)}*{_fmt(b[m.grad[p]], 10)} "
                         f"= {_fmt(b[q.symbol], 10)}")
            lines.append("")
            lines.append(explain_quantity(m, Quantity("gradient", f"dE/d{m.plain[p]}", m.grad[p], p, False, None)))
    else:
        formula = m.per_sample_truth(q)
        samples = range(m.N) if m.summed(q) else [n]
        lines.append(f"{label} = {m.correct_text(q)}")
        for k in samples:
            prefix = f"sample {k + 1}: " if m.summed(q) else ""
            lines.append(f"{' ' * len(label)}   {prefix}{numbers(formula, k)} = {_fmt(m.at(formula, point, k), 8)}")
        lines.append(f"{label} = {_fmt(m.at(q.symbol, point, n), 10)}")
    return "\n".join(lines)


def latex_explanation(solution, q: Quantity, precision: int = 6) -> str | None:
    """The worked solution's own display of ∂E/∂v (chain, expressions, numbers) as Markdown math.

    Reuses the document builder and the ``equation`` macro of the Markdown templates, one
    equation per sample; None for quantities the worked solution shows differently.
    """
    if q.kind not in ("gradient", "adjoint"):
        return None
    from .document import chain_equation
    from .render import environment

    samples = solution.training.first.samples
    chosen = range(len(samples)) if q.sample is None else [q.sample]
    template = environment("md").from_string('{% import "macros.md.j2" as m %}{{ m.equation(eq) }}')
    return "\n\n".join(template.render(eq=chain_equation(solution, q.target, n + 1, precision))
                        for n in chosen)


# -- the command line --------------------------------------------------------------------------

SHEET_ARGS = "claims given with --claim"


@dataclass(frozen=True)
class Sheet:
    """One --claims file (or the --claim options): where the claims came from, and their labels."""

    source: str
    student: str
    claims: tuple[tuple[str, str], ...]      # (label, text)


def load_claims(path: str) -> Sheet:
    """A TOML answer sheet: ``claims = ["…"]`` and/or ``[[claim]] text = "…" label = "1a"``; ``student`` optional."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CLAIMS_FILE:
            raise ClaimError(f"{path}: the file is too large ({size} bytes; at most {MAX_CLAIMS_FILE})")
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClaimError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ClaimError(f"{path}: expected UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClaimError(f"{path}: not valid TOML: {exc}") from None
    for key in raw:
        if key not in ("claims", "claim", "student", "title"):
            raise ClaimError(f"{path}: {key}: unknown key; expected claims = [\"…\"], [[claim]] tables, student, title")
    student = raw.get("student", "")
    if not isinstance(student, str):
        raise ClaimError(f"{path}: student: expected a string")
    out: list[tuple[str, str]] = []
    plain = raw.get("claims", [])
    if not isinstance(plain, list):
        raise ClaimError(f"{path}: claims: expected a list of strings like [\"dE/dw5 = 0.17\"]")
    for i, text in enumerate(plain):
        if not isinstance(text, str):
            raise ClaimError(f"{path}: claims[{i}]: expected a string; got {type(text).__name__}")
        out.append((str(i + 1), text))
    tables = raw.get("claim", [])
    if not isinstance(tables, list):
        raise ClaimError(f"{path}: claim: expected [[claim]] tables")
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or not isinstance(table.get("text"), str):
            raise ClaimError(f"{path}: claim[{i}].text: expected a string like \"dE/dw5 = 0.17\"")
        extra = set(table) - {"text", "label"}
        if extra:
            raise ClaimError(f"{path}: claim[{i}].{sorted(extra)[0]}: unknown key; expected text and label")
        label = table.get("label", len(out) + 1)
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise ClaimError(f"{path}: claim[{i}].label: expected a string or a number")
        out.append((str(label), table["text"]))
    if not out:
        raise ClaimError(f"{path}: no claims; expected claims = [\"dE/dw5 = 0.17\"] or [[claim]] tables")
    if len(out) > 10_000:
        raise ClaimError(f"{path}: too many claims ({len(out)}; at most 10000)")
    return Sheet(path, student, tuple(out))


def _grade(solution, sheets: Sequence[Sheet], explain_: bool, latex: bool = False) -> list[tuple[Sheet, list[tuple[str, Verdict, str | None]]]]:
    results = []
    for sheet in sheets:
        rows = []
        for label, text in sheet.claims:
            try:
                verdict = check_claim(solution, text)
            except ClaimError as exc:
                where = f"{sheet.source}: claim {label}: " if sheet.source != SHEET_ARGS else f"--claim {label}: "
                raise ClaimError(where + str(exc)) from None
            explanation = None
            if explain_:
                q = read(solution, text).quantity
                explanation = explain_quantity(model(solution), q)
                if latex:
                    explanation = (explanation, latex_explanation(solution, q))
            rows.append((label, verdict, explanation))
        results.append((sheet, rows))
    return results


def _text_report(results) -> str:
    out = []
    for sheet, rows in results:
        held = sum(v.holds for _, v, _ in rows)
        who = f" ({_plain_text(sheet.student)})" if sheet.student else ""
        out.append(f"{sheet.source}{who}: {len(rows)} claim{'s' if len(rows) != 1 else ''}, {held} hold, "
                   f"{len(rows) - held} do{'es' if len(rows) - held == 1 else ''} not")
        for label, v, explanation in rows:
            out.append(f"[{label}] {_plain_text(v.claim)}")
            if v.holds:
                if v.kind == "number":
                    out.append(f"    holds: the true value {v.expected.split(' (')[0]} is {_plain_text(_shown(v))} "
                               f"to {v.precision}" if v.precision != "exact" else "    holds exactly")
                else:
                    out.append("    holds for all values of its symbols")
                if v.note:
                    out.append(f"    note: {v.note}")
            else:
                out.append(f"    does not hold: expected {v.expected}")
                out.append(f"    diagnosis: {v.diagnosis}")
            if explanation:
                out += ["    " + line for line in explanation.splitlines()]
    return "\n".join(out) + "\n"


def _shown(v: Verdict) -> str:
    m = re.search(r"= *(.*)$", v.claim)
    return " ".join(m.group(1).split()) if m else ""


def _plain_text(text: str) -> str:
    flat = " ".join(text.split())
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in flat)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~]|^[#+\-=>])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _plain_text(text))


def _md_code(text: str) -> str:
    flat = _plain_text(text)
    run = max((len(r) for r in re.findall(r"`+", flat)), default=0)
    fence = "`" * (run + 1)
    return f"{fence} {flat} {fence}"


def _md_report(results) -> str:
    out = ["# derive check", ""]
    for sheet, rows in results:
        held = sum(v.holds for _, v, _ in rows)
        who = f" ({_md(sheet.student)})" if sheet.student else ""
        out += [f"## {_md(sheet.source)}{who}", "", f"{len(rows)} claims: {held} hold, {len(rows) - held} do not.", "",
                "| # | claim | verdict | expected | diagnosis |", "| --- | --- | --- | --- | --- |"]
        for label, v, _ in rows:
            verdict = "holds" if v.holds else "**does not hold**"
            diag = _md(v.diagnosis) if v.diagnosis else (_md("note: " + v.note) if v.note else "")
            out.append(f"| {_md(label)} | {_md_code(v.claim)} | {verdict} | {_md_code(v.expected)} | {diag} |")
        out.append("")
        for label, v, explanation in rows:
            if explanation:
                text, math = explanation
                out += [f"### {_md(label)}: {_md(v.quantity)}", "", "```text", text, "```", ""]
                if math:
                    out += [math, ""]
    return "\n".join(out)


def _json_report(results) -> str:
    claims = []
    for sheet, rows in results:
        for label, v, explanation in rows:
            entry = {"claim": v.claim, "holds": v.holds, "expected": v.expected, "diagnosis": v.diagnosis}
            entry.update({k: val for k, val in asdict(v).items() if k not in entry})
            entry.update({"source": sheet.source, "label": label})
            if sheet.student:
                entry["student"] = sheet.student
            if explanation is not None:
                entry["explanation"] = explanation
            claims.append(entry)
    total = len(claims)
    held = sum(c["holds"] for c in claims)
    return json.dumps({"claims": claims, "summary": {"claims": total, "hold": held, "fail": total - held}},
                      indent=2, ensure_ascii=False) + "\n"


def cmd_check(args: argparse.Namespace) -> int:
    from .api import solve

    if not args.claim and not args.claims:
        args.check_parser.error("give at least one --claim \"LHS = RHS\" or --claims FILE")
    sheets = []
    if args.claim:
        sheets.append(Sheet(SHEET_ARGS, "", tuple((str(i + 1), t) for i, t in enumerate(args.claim))))
    sheets += [load_claims(path) for path in args.claims or ()]
    solution = solve(args.spec)
    results = _grade(solution, sheets, args.explain, latex=args.format == "md")
    report = {"text": _text_report, "md": _md_report, "json": _json_report}[args.format](results)
    sys.stdout.write(report)
    return 0 if all(v.holds for _, rows in results for _, v, _ in rows) else 3


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `derive check` to the command line."""
    p = subparsers.add_parser(
        "check", help="check claimed derivatives and numbers against the true ones",
        description="Check claims 'LHS = RHS' about a spec's derivation: exit 0 when all hold, 3 when one "
                    "does not, 1 when a claim cannot be read.")
    p.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name")
    p.add_argument("--claim", action="append", metavar='"LHS = RHS"',
                   help="a claim such as \"dE/dw5 = 0.17\" or \"dE/dw5 = (o - y)*h1\" (repeatable)")
    p.add_argument("--claims", action="extend", nargs="+", metavar="FILE",
                   help="TOML answer sheets: claims = [\"…\"] or [[claim]] text = \"…\" (one file per student; "
                        "several files grade a class in one run)")
    p.add_argument("--format", choices=("text", "json", "md"), default="text")
    p.add_argument("--explain", action="store_true", help="print the correct derivation of each claimed quantity")
    p.set_defaults(run=cmd_check, check_parser=p)


# -- benchmark ------------------------------------------------------------------------------------

def benchmark_grading(students: int = 200, per_student: int = 10, spec: str = "sigmoid-222") -> dict[str, float]:
    """Grade a synthetic class (numbers and expressions, right and wrong) and time it.

    Returns the seconds for building the solution and for grading, and claims per second.
    """
    from .api import solve

    start = time.perf_counter()
    solution = solve(spec)
    m = model(solution)
    _ = m.spec_point, m.points
    built = time.perf_counter() - start
    pool = _benchmark_pool(solution)
    rng = random.Random(1)
    sheets = [[rng.choice(pool) for _ in range(per_student)] for _ in range(students)]
    start = time.perf_counter()
    failed = 0
    for sheet in sheets:
        failed += sum(not v.holds for v in check_claims(solution, sheet))
    graded = time.perf_counter() - start
    total = students * per_student
    return {"setup_seconds": built, "grading_seconds": graded, "claims": total,
            "claims_per_second": total / graded, "failed": failed}


def _benchmark_pool(solution) -> list[str]:
    """Claims a class might hand in for the example: right and wrong, numbers and expressions."""
    m = model(solution)
    out = []
    for p in m.net.parameters[:6]:
        g = _MP.re(m.spec_point.batch[m.grad[p]])
        name = m.plain[p]
        out += [f"dE/d{name} = {_rounded(g, 4)}", f"dE/d{name} = {_rounded(-g, 4)}", f"dE/d{name} = {_rounded(2 * g, 3)}",
                f"{name}' = {_rounded(m.spec_point.batch[m.after[p]], 3)}"]
        correct = m.correct_text(Quantity("gradient", "", m.grad[p], p, False, None))
        out += [f"dE/d{name} = {correct}", f"dE/d{name} = 2*{correct}", f"dE/d{name} = -{correct}"]
    return out
