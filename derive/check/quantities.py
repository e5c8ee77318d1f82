"""What a claim's left side names, its true expression and its value at the spec's and at random points."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterator, Literal, Mapping, NamedTuple, Sequence, overload

import sympy as sp
from sympy import Expr, Symbol

from derive.check.claims import Lhs, NameRef, SampleSum
from derive.check.evaluator import MP, Undefined, close, to_mpf, value
from derive.errors import ClaimError
from derive.model.plain import PlainPrinter
from derive.numeric.rounding import Rounding, number
from derive.numeric.rule import decayed, learning_rates
from derive.numeric.values import Forward, Step, evaluate, forward, frozen, initial_parameters

POINTS = 3                  # random points for smooth networks
PIECEWISE_POINTS = 16       # … and for networks with ReLU-like units
MAX_PATHS = 24              # chains expanded for the diagnosis; beyond, the compact δ form
SEED = 20240917             # the random points are the same on every run
# names that stand for the loss on their own (in dE/dNAME any capital letter does)
LOSS_NAMES = frozenset({"E", "L", "C", "J", "Etotal", "Etot", "Error", "Loss", "Cost", "error", "loss", "cost"})



@dataclass(frozen=True)
class Quantity:
    """What the left-hand side names; ``symbol`` is the claim symbol whose value is the truth."""

    kind: str                 # gradient | adjoint | forward | loss | update | after | loss_after | local
    label: str                # as printed: dE/dw5, o[2], w5', delta_o, do1/dz_o1
    symbol: Expr              # a symbol, or a local factor's expression in the network's symbols
    target: Symbol            # the network symbol it is about
    per_sample: bool
    sample: int | None        # 0-based sample when one is named
    by: Symbol | None = None  # a local factor's variable: z_o1 in do1/dz_o1

    @property
    def about(self) -> tuple:
        """What the quantity is of, as memo keys need it: do1/dz_o1 and do1/dz_h1 share kind and target."""
        return self.kind, self.target, self.by


class Entry(NamedTuple):
    """A name of the network: what kind of value it names, and the symbol."""

    kind: str                 # const | input | target | param | forward | delta | sample_loss
    symbol: Symbol


class Meaning(NamedTuple):
    """What a written name stands for: its kind (an Entry's, or loss), its symbol, its sample index."""

    kind: str
    symbol: Symbol
    sample_index: int | None  # None: no sample named; 0: the sample variable n; k ≥ 1: sample k


class Unit(NamedTuple):
    """Where a net input z or an activation a is: unit ``position`` of layer ``layer`` (both from 0)."""

    kind: str                 # "z" | "a"
    layer: int
    position: int


class Place(NamedTuple):
    """Which sample a left-hand side names (0-based; None: none), and that as a label's suffix ([2] or "")."""

    sample: int | None
    where: str


# the name of a symbol the checker builds itself (never out of range, so never in a message)
UNWRITTEN = NameRef("", (), False, 0)


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
        self.loss_rule = spec.rule
        self.n_symbol = Symbol("N", positive=True)
        self.eta = Symbol("eta", real=True)
        self.lam = Symbol("lambda", real=True)          # weight decay's λ
        self.rates, self.decay = learning_rates(d), decayed(d)
        self.one_rate = not solution.spec.optimizer.per_layer     # else a claim writes each layer's rate as a number
        self.E = net.loss if self.N == 1 else Symbol("E", real=True)
        self.plain = {s: name.plain for s, name in net.names.items()}
        self.grad = {p: Symbol(f"dE/d{self.plain[p]}", real=True) for p in net.parameters}
        # with momentum, v_w5: the velocity the first update leaves, v = μ·0 − η ∂E/∂w5
        self.velocity = {p: Symbol(f"v_{self.plain[p]}", real=True) for p in net.parameters}
        forward = [s for l in range(spec.depth) for s in net.nets[l] + net.activations[l]]
        self.forward = tuple(forward)
        self.after = {s: Symbol(self.plain[s] + "'", real=True) for s in list(net.parameters) + forward + [net.loss]}
        self.after[self.E] = Symbol("E'", real=True)
        self.frozen = frozen(d)
        self.unit: dict[Symbol, Unit] = {}
        for l in range(spec.depth):
            for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])):
                self.unit[z], self.unit[a] = Unit("z", l, j), Unit("a", l, j)
        self.wpos = {w: (l, j, k) for l, layer in enumerate(net.weights) for j, row in enumerate(layer)
                     for k, w in enumerate(row)}
        self.bpos = {b: (l, j) for l, layer in enumerate(net.biases) for j, b in enumerate(layer)}
        self.display: dict[Symbol, str] = {self.eta: "eta", self.n_symbol: "N", self.lam: "lambda"}
        for v in forward:
            self.display[d.adjoint[v]] = (net.notation.delta(*self.unit[v][1:]).plain if self.unit[v][0] == "z"
                                          else f"dE/d{self.plain[v]}")
        if self.N > 1:                        # de/dw5: sample n's part of dE/dw5, the derivative of its loss e
            for p in net.parameters:
                self.display[d.adjoint[p]] = f"de/d{self.plain[p]}"
        self.index_of: dict[Symbol, tuple[Symbol, int]] = {}
        self.entries = self._entries()
        self.printer = PlainPrinter(self.display)
        self.per_sample = frozenset(net.inputs + net.targets + tuple(forward) + (net.loss,)
                                    + tuple(d.adjoint[v] for v in forward + list(net.parameters))
                                    + tuple(self.after[s] for s in forward + [net.loss])) if self.N > 1 else frozenset()
        # symbols whose values carry the loss's 1/N: a claim using them scales with N by itself
        self.scaled = frozenset([*d.adjoint.values(), *self.grad.values(), self.E, net.loss, self.after[self.E],
                                 self.after[net.loss]]) - {sp.S.One}
        self.piecewise = any(net.activation(l).piecewise for l in range(spec.depth))     # ReLU, leaky ReLU, ELU
        # targets that sum to 1 (one-hot): the checker's random targets do too, as cross-entropy with softmax assumes
        self.normalized = spec.layers[-1] > 1 and all(sum(row) == 1 for row in spec.y)
        self._memo: dict[tuple, Any] = {}
        self._rounded: dict[tuple[str, int], Point] = {}

    # -- names ----------------------------------------------------------------------------------
    def _entries(self) -> dict[str, Entry]:
        """Every name a claim may use, in the order the error messages list them."""
        net = self.net
        out: dict[str, Entry] = {"N": Entry("const", self.n_symbol)}
        for word in ("eta", "alpha", "lr") if self.one_rate else ():
            out[word] = Entry("const", self.eta)
        for word in ("lambda", "lam") if self.decay else ():
            out[word] = Entry("const", self.lam)
        for p in net.parameters if self.spec.optimizer.momentum else ():
            out[f"v_{self.plain[p]}"] = Entry("velocity", p)
        for kind, symbols in (("input", net.inputs), ("target", net.targets), ("param", net.parameters)):
            for s in symbols:
                out[self.plain[s]] = Entry(kind, s)
        for s in self.forward:
            out.update(self._forward_entries(s))
        for alias, entry in [*self._unit_aliases(), *self._spec_aliases(out)]:
            out.setdefault(alias, entry)
        if self.N > 1:
            out[self.plain[net.loss]] = Entry("sample_loss", net.loss)
        return out

    def _forward_entries(self, s: Symbol) -> list[tuple[str, Entry]]:
        """A computed value's name, with Mazur's out_h1 and net_h1 for an activation, its δ for a net input."""
        name = self.plain[s]
        kind, l, j = self.unit[s]
        if kind == "a":
            return [(name, Entry("forward", s)), ("out_" + name, Entry("forward", s)),
                    ("net_" + name, Entry("forward", self.net.nets[l][j]))]
        delta = self.d.adjoint[s]
        return [(name, Entry("forward", s)), (self.display[delta], Entry("delta", delta))]

    def _unit_aliases(self) -> Iterator[tuple[str, Entry]]:
        """a2_1, z2_1 and delta2_1 for unit 1 of layer 2 (they also name output units)."""
        net = self.net
        for l in range(self.spec.depth):
            for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])):
                yield f"a{l + 1}_{j + 1}", Entry("forward", a)
                yield f"z{l + 1}_{j + 1}", Entry("forward", z)
                yield f"delta{l + 1}_{j + 1}", Entry("delta", self.d.adjoint[z])

    def _spec_aliases(self, entries: Mapping[str, Entry]) -> list[tuple[str, Entry]]:
        """[notation].aliases of the network's values: Mazur's i1 for x1 (matrices: derive.check.matrices)."""
        return [(alias, entries[target]) for alias, target in self.spec.aliases if target in entries]

    def known_names(self) -> str:
        names = [n for n, (kind, _) in self.entries.items() if kind != "const" and not n.startswith(("out_", "net_"))]
        shown = names[:14]
        return ", ".join(shown) + (", …" if len(names) > len(shown) else "")

    def lookup(self, ref: NameRef, loss: str | None) -> Meaning:
        """What a written name stands for; ``loss`` is the letter the claim uses for the loss (None: any)."""
        for plain, index in ref.spellings:
            if plain in self.entries:
                kind, s = self.entries[plain]
                return Meaning(kind, s, index)
            if plain in ("E", "Etotal", loss) or (loss is None and plain in LOSS_NAMES):
                return Meaning("loss", self.E, index)
        hint = ""
        if re.fullmatch(r"[A-Z]\d*", ref.text.rstrip("'")):
            hint = ("; capital names are matrices or the loss: a matrix claim names a matrix on the left, "
                    "e.g. dE/dW2 = Delta2 * A1^T")
        elif ref.text in ("eta", "alpha", "lr"):
            hint = "; [train].learning_rate gives each layer its own rate: write the layer's rate as a number"
        elif ref.text in ("lambda", "lam"):
            hint = "; this spec has no weight decay ([train].weight_decay)"
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
    def tape(self, params: dict[Symbol, Any], data: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> Point:
        """Every claim symbol's value at a random point, by the derivation's formulas evaluated as a claim is:
        the same 40-digit evaluator, so that a claim and its truth differ only where their formulas do."""
        net, d = self.net, self.d
        batch: dict[Symbol, Any] = {**params, **{c: to_mpf(v) for c, v in self.constants.items()}}
        samples = []
        for xs, ys in data:
            env = {**params, **dict(zip(net.inputs, xs)), **dict(zip(net.targets, ys))}
            for s in net.order:
                env[s] = value(net.definitions[s], env.__getitem__)
            for v in d.backward_order:
                env[d.adjoint[v]] = value(d.gradient[v], env.__getitem__)
            samples.append(env)
        batch[self.E] = MP.fsum(env[net.loss] for env in samples)
        updated = {}
        for p in net.parameters:
            batch[self.grad[p]] = g = MP.fsum(env[d.adjoint[p]] for env in samples)
            updated[p] = params[p] if p in self.frozen else params[p] - self.numeric_step(batch, p, g)
            batch[self.after[p]] = updated[p]
            batch[self.velocity[p]] = updated[p] - params[p]
        after_loss = []
        for env, (xs, ys) in zip(samples, data):
            new = {**updated, **dict(zip(net.inputs, xs)), **dict(zip(net.targets, ys))}
            for s in net.order:
                new[s] = value(net.definitions[s], new.__getitem__)
                env[self.after[s]] = new[s]
            after_loss.append(new[net.loss])
        batch[self.after[self.E]] = MP.fsum(after_loss)
        return Point(batch, samples)

    @cached_property
    def spec_point(self) -> Point:
        """The spec's own numbers as the engine computed them (exact, or with digits enough for a
        saturated unit), at 40 digits: a walk of its own at 40 digits would take σ(2500) for 1 and
        find ln(1 − o) undefined where the engine has its true value."""
        return self._engine_point(*self.exact_steps)

    def _engine_point(self, first: Step, after: Forward) -> Point:
        """A Point of the engine's first step and the forward pass after it, at 40 digits."""
        net = self.net
        batch: dict[Symbol, Any] = {**{p: to_mpf(v) for p, v in first.parameters.items()},
                                    **{c: to_mpf(v) for c, v in self.constants.items()},
                                    self.E: to_mpf(first.loss), self.after[self.E]: to_mpf(after.loss)}
        for p in net.parameters:
            batch[self.grad[p]], batch[self.after[p]] = to_mpf(first.gradient[p]), to_mpf(first.updated[p])
            batch[self.velocity[p]] = to_mpf(first.updated[p] - first.parameters[p])
        samples = []
        for env, new in zip(first.samples, after.samples):
            sample = {s: to_mpf(v) for s, v in env.items()}
            sample.update({self.after[s]: to_mpf(new[s]) for s in net.order})
            samples.append(sample)
        return Point(batch, samples)

    @cached_property
    def points(self) -> list[Point]:
        """Random parameters, inputs and targets; the same on every run."""
        rng = random.Random(SEED)
        normalized = self.normalized
        out = []
        for _ in range(PIECEWISE_POINTS if self.piecewise else POINTS):
            params = {p: MP.mpf(rng.uniform(-1.2, 1.2)) for p in self.net.parameters}
            data = []
            for _ in range(self.N):
                xs = [MP.mpf(rng.uniform(-1.5, 1.5)) for _ in self.net.inputs]
                ys = [MP.mpf(rng.uniform(0.05, 0.95)) for _ in self.net.targets]
                if normalized:
                    total = MP.fsum(ys)
                    ys = [v / total for v in ys]
                data.append((xs, ys))
            out.append(self.tape(params, data))
        return out

    @cached_property
    def exact_steps(self) -> tuple:
        """Step 1 and the forward pass after it, as the engine computes them: exact rationals, or 60
        digits and more where a saturated unit needs them. The truth a claimed number is held against."""
        done = self.solution.__dict__.get("training")
        if done is not None and self.solution.carry is None:
            return done.first, done.after
        first = evaluate(self.d, initial_parameters(self.d))
        return first, forward(self.d, first.updated)

    def exact_value(self, q: Quantity, n: int) -> Expr:
        """The engine's value of q for sample n (a SymPy Rational, or a Float of 60 digits or more)."""
        first, after = self.exact_steps
        if q.kind == "gradient":
            return first.gradient[q.target]
        if q.kind == "update":
            return first.updated[q.target]
        if q.kind == "velocity":
            return first.updated[q.target] - first.parameters[q.target]
        if q.kind == "loss":
            return first.loss
        if q.kind == "loss_after":
            return after.loss
        if q.kind == "after":
            return after.samples[n][q.target]
        if q.kind == "local":
            return q.symbol.xreplace(first.samples[n])
        return first.samples[n][q.symbol]

    def rounded_point(self, mode: str, digits: int) -> Point:
        """The spec's numbers computed by hand, each intermediate rounded to ``digits`` (decimals or significant)
        as it is written down: the engine's carried rounding, the numbers of ``derive solve --rounding carried``."""
        key = (mode, digits)
        if key not in self._rounded:
            carry = Rounding(digits, decimals=mode == "decimals")
            first = evaluate(self.d, initial_parameters(self.d), carry)
            self._rounded[key] = self._engine_point(first, forward(self.d, first.updated, carry))
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
            return MP.fsum(value(inner, self.getter(point, m), None) for m in range(len(point.samples)))
        return value(expr, self.getter(point, n), summed)

    # -- quantities -------------------------------------------------------------------------------
    def quantity(self, lhs: Lhs) -> Quantity:
        """The quantity a left-hand side names; ClaimError for an input, a given value, a typo."""
        ref = lhs.ref
        if lhs.kind == "local":
            return self._local_quantity(lhs)
        meaning = self.lookup(ref, lhs.loss if lhs.kind == "derivative" else None)
        index = meaning.sample_index
        sample = None if index in (None, 0) else index - 1
        if index is not None and index > self.N:
            self.indexed(meaning.symbol, index, ref)                       # raises the message
        place = Place(sample, "" if sample is None or self.N == 1 else f"[{sample + 1}]")
        if lhs.kind == "derivative":
            return self._derivative_quantity(lhs, meaning, place)
        named = {"loss": self._loss_quantity, "param": self._update_quantity, "forward": self._computed_quantity,
                 "sample_loss": self._computed_quantity, "delta": self._delta_quantity,
                 "velocity": self._velocity_quantity}
        return named.get(meaning.kind, self._not_computed)(ref, meaning, place)

    def _derivative_quantity(self, lhs: Lhs, meaning: Meaning, place: Place) -> Quantity:
        """dE/dNAME: a gradient, sample n's part of one (de/dw5), or the adjoint of a computed value."""
        ref, (kind, s, index), (sample, where) = lhs.ref, meaning, place
        if ref.prime:
            raise ClaimError(f"column {ref.column}: derivatives after the update are not part of the derivation")
        if kind == "param" and lhs.loss == "e" and self.N > 1:
            return Quantity("adjoint", f"de/d{self.plain[s]}{where}", self.d.adjoint[s], s, True, sample)
        if kind == "param":
            if index:
                raise ClaimError(f"column {ref.column}: dE/d{self.plain[s]} is one number for the whole batch"
                                 + (f"; de/d{self.plain[s]}[{index}] is sample {index}'s part" if self.N > 1 else ""))
            return Quantity("gradient", f"dE/d{self.plain[s]}", self.grad[s], s, False, None)
        if kind == "forward":
            adjoint = self.d.adjoint[s]
            return Quantity("adjoint", f"dE/d{self.plain[s]}{where}", adjoint, s, self.N > 1, sample)
        raise ClaimError(f"column {ref.column}: {ref.spellings[0][0]} is {self._what(kind)}; the derivation has "
                         f"dE/d of parameters, net inputs and activations")

    def _local_quantity(self, lhs: Lhs) -> Quantity:
        """do1/dz_o1: one local factor of the chain rule, the derivative of a value by one it is computed from."""
        assert lhs.of is not None
        child, parent = self.lookup(lhs.of, None), self.lookup(lhs.ref, None)
        if lhs.of.prime or lhs.ref.prime:
            raise ClaimError(f"column {lhs.ref.column}: a local factor such as do1/dz_o1 is one of the forward "
                             f"pass; it has no value after the update")
        indices = {meaning.sample_index or 0 for meaning in (child, parent)} - {0}
        if len(indices) > 1 or max(indices, default=0) > self.N:
            raise ClaimError(f"column {lhs.ref.column}: one sample per factor, 1 to {self.N}")
        sample = indices.pop() - 1 if indices else None
        c, p = child.symbol, parent.symbol
        of, by = self.plain.get(c, lhs.of.text), self.plain.get(p, lhs.ref.text)
        parents = self.net.parents(c) if c in self.net.definitions or c == self.net.loss else ()
        if p not in parents:
            computed = ", ".join(self.plain[s] for s in parents) or "nothing: it is given"
            raise ClaimError(f"column {lhs.ref.column}: d{of}/d{by} is not one factor of the chain; {of} is computed "
                             f"from {computed}")
        label = f"d{of}/d{by}" + ("" if sample is None else f"[{sample + 1}]")
        # the factor's own expression stands where other quantities have their symbol: o1*(1 - o1) is its value
        return Quantity("local", label, self.net.local(c, p), c, self.N > 1, sample, p)

    def _loss_quantity(self, ref: NameRef, meaning: Meaning, place: Place) -> Quantity:
        """E, or E' after the update: one number for the whole batch."""
        if meaning.sample_index is not None:
            raise ClaimError(f"column {ref.column}: the loss E is one number for the whole batch"
                             + ("; e[n] is sample n's part" if self.N > 1 else ""))
        return Quantity("loss_after", "E'", self.after[self.E], self.E, False, None) if ref.prime else \
            Quantity("loss", "E", self.E, self.E, False, None)

    def _update_quantity(self, ref: NameRef, meaning: Meaning, place: Place) -> Quantity:
        """w5': a parameter after the update (the parameter itself is given by the spec)."""
        s = meaning.symbol
        self._no_sample(ref, meaning.sample_index, s)
        if not ref.prime:
            raise ClaimError(f"column {ref.column}: {self.plain[s]} is given by the spec; claim dE/d{self.plain[s]} "
                             f"or {self.plain[s]}' (its value after the update)")
        return Quantity("update", f"{self.plain[s]}'", self.after[s], s, False, None)

    def _velocity_quantity(self, ref: NameRef, meaning: Meaning, place: Place) -> Quantity:
        """v_w5: the velocity of a parameter after the first update (from v = 0)."""
        s = meaning.symbol
        self._no_sample(ref, meaning.sample_index, s)
        if ref.prime:
            raise ClaimError(f"column {ref.column}: v_{self.plain[s]} is the velocity after the first update; "
                             f"write it without a prime")
        return Quantity("velocity", f"v_{self.plain[s]}", self.velocity[s], s, False, None)

    def _computed_quantity(self, ref: NameRef, meaning: Meaning, place: Place) -> Quantity:
        """o, z_h1, e[2]: a value of the forward pass, or with a prime its value after the update."""
        s, (sample, where) = meaning.symbol, place
        if ref.prime:
            return Quantity("after", f"{self.plain[s]}'{where}", self.after[s], s, self.N > 1, sample)
        return Quantity("forward", self.plain[s] + where, s, s, self.N > 1, sample)

    def _delta_quantity(self, ref: NameRef, meaning: Meaning, place: Place) -> Quantity:
        """delta_o: the error signal of a net input, the adjoint of that net input."""
        s, (sample, where) = meaning.symbol, place
        z = next(v for v in self.forward if self.d.adjoint[v] == s)
        return Quantity("adjoint", self.display[s] + where, s, z, self.N > 1, sample)

    def _not_computed(self, ref: NameRef, meaning: Meaning, place: Place) -> Quantity:
        raise ClaimError(f"column {ref.column}: {ref.text} is {self._what(meaning.kind)}, not a quantity the "
                         f"derivation computes")

    def _no_sample(self, ref: NameRef, index: int | None, s: Symbol) -> None:
        if index:
            raise ClaimError(f"column {ref.column}: {self.plain[s]} is the same for every sample; drop the [{index}]")

    @staticmethod
    def _what(kind: str) -> str:
        return {"input": "an input given by the spec", "target": "a target given by the spec",
                "const": "a constant", "loss": "the loss", "delta": "an error signal δ",
                "sample_loss": "a sample's loss"}.get(kind, kind)

    # -- the truth ------------------------------------------------------------------------------------
    def chains(self, v: Symbol, limit: bool = True) -> list[list[tuple[tuple, Expr]]] | None:
        """The chains of local factors from the loss to v, each factor with its role; None if more than MAX_PATHS
        (unless not ``limit``: an exam's distractors are built once per architecture)."""
        if limit and self.d.path_count(v) > MAX_PATHS:
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
        return self.N > 1 and q.kind in ("gradient", "loss", "update", "loss_after", "velocity")

    def per_sample_truth(self, q: Quantity) -> Expr:
        """The true expression for one sample (one sample's part of a batch sum)."""
        net = self.net
        if q.kind in ("gradient", "adjoint"):
            return self._chain_sum(q.target)
        if q.kind in ("forward", "loss"):
            return net.definitions[q.target if q.kind == "forward" else net.loss]
        if q.kind == "local":
            return q.symbol
        if q.kind in ("after", "loss_after"):
            s = q.target if q.kind == "after" else net.loss
            return net.definitions[s].xreplace(self.after)
        raise AssertionError(q.kind)

    def _chain_sum(self, v: Symbol) -> Expr:
        chains = self.chains(v)
        if chains is None:
            return self.d.gradient[v]
        return sp.Add(*(sp.Mul(*(f for _, f in chain)) for chain in chains))

    # -- the update rule: p' = p − η (∂E/∂p + λp), η per layer where [train] gives one per layer --------
    @property
    def constants(self) -> dict[Symbol, Expr]:
        """The values of the constants a claim may name: N, η (one rate for every layer), λ."""
        return {self.n_symbol: sp.Integer(self.N), self.eta: self.spec.learning_rate,
                self.lam: self.spec.optimizer.weight_decay}

    def rate(self, p: Symbol) -> Expr:
        """p's learning rate as a claim writes it: eta, or with a rate per layer its number."""
        return self.eta if self.one_rate else self.rates[p]

    def rate_text(self, p: Symbol) -> str:
        return "eta" if self.one_rate else number(self.rates[p]).plain

    def step(self, p: Symbol, gradient: Expr) -> Expr:
        """What the first update subtracts from p: η ∂E/∂p, with weight decay η (∂E/∂p + λp)."""
        return self.rate(p) * (gradient + self.lam * p if p in self.decay else gradient)

    def numeric_step(self, batch: Mapping[Symbol, Any], p: Symbol, gradient: Any) -> Any:
        """The same at a point's values (``batch`` holds p, η and λ)."""
        rate = batch[self.eta] if self.one_rate else to_mpf(self.rates[p])
        return rate * (gradient + batch[self.lam] * batch[p] if p in self.decay else gradient)

    def implied_gradient(self, batch: Mapping[Symbol, Any], p: Symbol, updated: Any) -> Any:
        """The ∂E/∂p that an updated value p' implies: (p − p')/η, less λp with weight decay."""
        implied = (batch[p] - updated) / (batch[self.eta] if self.one_rate else to_mpf(self.rates[p]))
        return implied - batch[self.lam] * batch[p] if p in self.decay else implied

    def truth(self, q: Quantity) -> Expr:
        """The correct expression, written in the claim's symbols."""
        if q.kind in ("update", "velocity"):
            p = q.target
            moved = sp.S.Zero if p in self.frozen else -self.step(p, self.truth(self.gradient_of(p)))
            return p + moved if q.kind == "update" else moved
        inner = self.per_sample_truth(q)
        return SampleSum(inner) if self.summed(q) else inner

    @overload
    def correct_text(self, q: Quantity, general: None = None) -> str: ...
    @overload
    def correct_text(self, q: Quantity, general: Literal[False]) -> str: ...
    @overload
    def correct_text(self, q: Quantity, general: bool) -> str | None: ...

    def correct_text(self, q: Quantity, general: bool | None = None) -> str | None:
        """The correct expression as text a student can read and paste back, factors in chain order.

        For one named sample (``delta_h1[1]``) every per-sample name carries that sample's index.
        With ``general`` the loss's constant is written with N (2*(o - y)/N, not o - y for N = 2):
        the formula for any number of samples; None where the text is not a product of chains.
        By default the general one wherever the loss averages over several samples (the one that
        holds as a claim), else this spec's.
        """
        if general is None:
            if self.N > 1 and self.loss_rule.averages:
                return self.correct_text(q, True) or self.correct_text(q, False)
            general = False
        key = ("text", *q.about, q.sample if self.N > 1 else None, general)
        if key not in self._memo:
            self._memo[key] = self._correct_text(q, general)
        return self._memo[key]

    def gradient_of(self, p: Symbol) -> Quantity:
        return Quantity("gradient", f"dE/d{self.plain[p]}", self.grad[p], p, False, None)

    def _correct_text(self, q: Quantity, general: bool) -> str | None:
        if q.kind in ("update", "velocity"):
            p = q.target
            if p in self.frozen:
                return self.plain[p] if q.kind == "update" else "0"
            gradient = self.correct_text(self.gradient_of(p))
            step = (f"{self.rate_text(p)}*({gradient} + lambda*{self.plain[p]})" if p in self.decay
                    else f"{self.rate_text(p)}*{self._paren(gradient)}")
            return f"{self.plain[p]} - {step}" if q.kind == "update" else f"-{step}"
        here = self._at_sample(q.sample)
        scale = self.loss_rule.scale(self.n_symbol, self.J) / self.loss_rule.scale(self.N, self.J) if general else 1
        if q.kind in ("gradient", "adjoint"):
            chains = self.chains(q.target)
            text = " + ".join(self._chain_text(chain, here, scale) for chain in self._through_softmax(chains)) or "0"
            if chains is None or len(text) > 240:          # the δ recursion reads better than a long sum
                if general:
                    return None
                text = self.printer.doprint(here(self.d.gradient[q.target]))
        else:
            if general and q.kind != "loss":
                return None
            text = self.printer.doprint(here(sp.factor_terms(self.per_sample_truth(q) * scale)))
        return f"sum({text})" if self.summed(q) else text

    def _at_sample(self, sample: int | None) -> Callable[[Expr], Expr]:
        """Writes an expression with sample k's indexed names (o[2]); the identity without a sample."""
        if sample is None or self.N == 1:
            return lambda e: e
        return lambda e: e.xreplace({s: self.indexed(s, sample + 1, UNWRITTEN) for s in e.free_symbols & self.per_sample})

    def _through_softmax(self, chains):
        """Chains through a softmax output with cross-entropy, regrouped as a hand derivation does.

        Σᵢ ∂E/∂oᵢ · ∂oᵢ/∂z_j is (o_j − y_j)/N when the targets sum to 1; the chains that differ only
        in i become one chain with that factor. Anything else is returned unchanged.
        """
        output = self.net.activation(self.spec.depth - 1)       # a softmax, which feeds cross-entropy only
        if not chains or output.elementwise or self.spec.loss not in output.losses or not self.normalized:
            return chains or []
        outputs, targets = self.net.outputs, self.net.targets
        last = {targets[-1]: 1 - sp.Add(*targets[:-1])}
        groups: dict[tuple, list] = {}
        for chain in chains:
            if len(chain) < 2 or chain[0][0][0] != "loss" or chain[1][0][0] != "act":
                return chains
            groups.setdefault((chain[1][0][3], tuple(role for role, _ in chain[2:])), []).append(chain)
        out = []
        for (j, _), members in groups.items():
            head = sp.Add(*(chain[0][1] * chain[1][1] for chain in members))
            error = outputs[j] - targets[j]
            c = sp.cancel(head.xreplace(last) / error.xreplace(last))
            if c.free_symbols & set(outputs + targets):
                return chains
            out.append([(("loss", outputs[j]), c * error)] + list(members[0][2:]))
        return out

    def _chain_text(self, chain, here: Callable[[Expr], Expr] = lambda e: e, scale: Expr = 1) -> str:
        factors = [(role, here(f) * (scale if role[0] == "loss" else 1)) for role, f in chain if f != 1]
        if len(factors) > 1 and factors[0][0][0] == "loss" and factors[1][0][0] == "act":
            # ∂E/∂o · ∂o/∂z in one piece where it cancels, as by hand: bce with σ gives (o − y)/4
            (_, loss), (_, act) = factors[:2]
            merged = sp.factor(sp.cancel(loss * act))
            if merged.could_extract_minus_sign() and not (-merged).could_extract_minus_sign():
                merged = sp.factor_terms(sp.expand(merged))      # (o - y)/N, not -(-o + y)/N
            if _occurrences(merged) < _occurrences(loss) + _occurrences(act):
                factors[:2] = [(("loss",), merged)]
        if len(factors) == 1:
            return self.printer.doprint(sp.factor_terms(factors[0][1]))
        return " * ".join(self._factor(f) for _, f in factors) or "1"

    def _factor(self, f: Expr) -> str:
        text = self.printer.doprint(sp.factor_terms(f))
        return self._paren(text) if (f.is_Add or text.startswith("-")) else text

    @staticmethod
    def _paren(text: str) -> str:
        """Parentheses around text unless it is one name, number or call, or already in parentheses."""
        if re.fullmatch(r"[\w'/\[\].]+", text):
            return text
        if text.startswith("(") and text.endswith(")"):
            depth = 0
            for i, ch in enumerate(text):
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth == 0:
                    break
            if i == len(text) - 1:
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
        """values_at, remembered under ``key`` (candidates are shared by every claim about a quantity)."""
        key = ("values", key, len(points), tuple(contexts))
        if key not in self._memo:
            self._memo[key] = values_at(self, expr, points, contexts)
        return self._memo[key]

    def show(self, expr: Expr) -> str:
        return self.printer.doprint(expr)


def _occurrences(e: Expr) -> int:
    """How many times symbols occur in e: (o − y)/4 has 2, ((1 − y)/(1 − o) − y/o)/4 has 4."""
    return sum(1 for a in sp.preorder_traversal(e) if a.is_Symbol)


# -- reading a claim ---------------------------------------------------------------------------

class Words:
    """The Vocabulary the parser asks about names, for one claim (knows the claim's loss letter)."""

    def __init__(self, m: Model, loss: str):
        self.m, self.loss = m, loss
        self.slope = m.spec.slope            # leaky_relu(z) in a claim has the network's slope

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
        if kind in ("param", "velocity"):
            return self._parameter(ref, kind, s, index)
        if kind in ("input", "target", "delta") and ref.prime:
            raise ClaimError(f"column {ref.column}: {ref.text}: only parameters and computed values change with the update")
        if ref.prime:
            s = m.after[s]
        return m.indexed(s, index, ref)

    def _parameter(self, ref: NameRef, kind: str, s: Symbol, index: int | None) -> Expr:
        """w5 or w5' (after the update), or with momentum v_w5: one number for the whole batch."""
        m = self.m
        if kind == "velocity":
            if index or ref.prime:
                raise ClaimError(f"column {ref.column}: v_{m.plain[s]} is one number, the velocity after the first "
                                 f"update")
            return m.velocity[s]
        if index:
            raise ClaimError(f"column {ref.column}: {m.plain[s]} is the same for every sample; drop the index")
        return m.after[s] if ref.prime else s

    def derivative(self, loss: str, ref: NameRef, in_sum: bool) -> Expr:
        m = self.m
        kind, s, index = m.lookup(ref, self.loss)
        if ref.prime:
            raise ClaimError(f"column {ref.column}: derivatives after the update are not part of the derivation")
        if kind == "param" and loss == "e" and m.N > 1:
            return m.indexed(m.d.adjoint[s], index, ref)
        if kind == "param":
            if index:
                raise ClaimError(f"column {ref.column}: dE/d{m.plain[s]} is one number for the whole batch"
                                 + (f"; de/d{m.plain[s]}[{index}] is sample {index}'s part" if m.N > 1 else ""))
            return m.grad[s]
        if kind == "forward":
            return m.indexed(m.d.adjoint[s], index, ref)
        raise ClaimError(f"column {ref.column}: no derivative of the loss with respect to {ref.text} in this derivation")


# -- evaluating an expression at the points --------------------------------------------------------

def lacks_sample_sum(m: Model, expr: Expr) -> bool:
    """Does expr use a per-sample name outside every sum over samples?"""
    if isinstance(expr, SampleSum):
        return False
    if expr.is_Symbol:
        return expr in m.per_sample
    return any(lacks_sample_sum(m, a) for a in expr.args)


def contexts_of(m: Model, q: Quantity, expr: Expr) -> list[int]:
    if q.sample is not None:
        return [q.sample]
    if q.per_sample or lacks_sample_sum(m, expr):
        return list(range(m.N))
    return [0]


def values_at(m: Model, expr: Expr, points: list[Point], contexts: list[int]) -> list[Any] | None:
    """expr at every point and sample context; None when it is undefined somewhere."""
    try:
        return [m.at(expr, p, n) for p in points for n in contexts]
    except Undefined:
        return None


def all_close(a: list[Any] | None, b: list[Any] | None) -> bool:
    return a is not None and b is not None and all(close(x, y) for x, y in zip(a, b))
