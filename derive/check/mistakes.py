"""The one catalogue of typical mistakes: wrong answers built from the true chain, for the checker's diagnoses and the exam's distractors."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, NamedTuple, Sequence
from weakref import WeakKeyDictionary

import sympy as sp
from sympy import Expr, Symbol

from derive.check import quantities
from derive.check.claims import SampleSum
from derive.check.quantities import UNWRITTEN, Quantity
from derive.model.registry import LOSSES, Activation, confusable
from derive.numeric.rounding import number


@dataclass(frozen=True)
class Candidate:
    """One typical wrong answer: a short key, the reason in words, and its expression."""

    key: str
    reason: str
    expr: Expr
    label: str | None = None        # an exam's short feedback where an exam offers it as a distractor


# a factor's role in a chain and its local derivative → the mistaken factor, or None to keep it
Change = Callable[[tuple, Expr], Expr | None]


def _replacing(role: tuple, new: Expr) -> Change:
    """The factor of exactly ``role`` replaced by ``new``."""
    def change(r: tuple, f: Expr) -> Expr | None:
        return new if r == role else None
    return change


def _transposing(l: int, W: Sequence[Sequence[Symbol]]) -> Change:
    """Each weight factor of layer l (("weight", l, j, k): w_jk) replaced by w_kj, its indices swapped."""
    def change(r: tuple, f: Expr) -> Expr | None:
        return W[r[3]][r[2]] if r[0] == "weight" and r[1] == l else None
    return change


def _in_layer(role: tuple, l: int) -> bool:
    """Is ``role`` an activation's factor ∂a_j/∂z_i in layer l (("act", l, j, i))?"""
    return role[0] == "act" and role[1] == l


def _dropping_off_diagonal(l: int) -> Change:
    """A softmax layer's factors ∂a_j/∂z_i with i ≠ j left out: only the diagonal kept."""
    def change(r: tuple, f: Expr) -> Expr | None:
        return sp.S.Zero if _in_layer(r, l) and r[2] != r[3] else None
    return change


def _times_sigmoid_derivative(l: int, acts: Sequence[Symbol]) -> Change:
    """Each factor ∂a_j/∂z_i of layer l multiplied by a_i·(1 − a_i), as if a sigmoid came after it."""
    def change(r: tuple, f: Expr) -> Expr | None:
        return f * acts[r[3]] * (1 - acts[r[3]]) if _in_layer(r, l) else None
    return change


# a unit's net input z and activation a → the factor a mistake writes for its derivative
UnitFactor = Callable[[Expr, Expr], Expr]


def _one(z: Expr, a: Expr) -> Expr:
    """No factor at all: the derivative left out."""
    return sp.S.One


def _output(z: Expr, a: Expr) -> Expr:
    """The activation itself instead of its derivative."""
    return a


def _at_output(act: Activation) -> UnitFactor:
    """f' taken at the output a instead of at the net input z."""
    def factor(z: Expr, a: Expr) -> Expr:
        return act.df(a, act.f(a))
    return factor


def _at_net_input(act: Activation) -> UnitFactor:
    """f' written in a (σ' = a(1 − a)) with z where a belongs."""
    def factor(z: Expr, a: Expr) -> Expr:
        return act.df(z, z)
    return factor


@dataclass(frozen=True)
class _LayerUnits:
    """The activation factors of one layer in the chains, as the reasons name them (by their first unit)."""

    l: int
    name: str                 # the activation's name in the spec, e.g. sigmoid
    act: Activation
    z: Symbol                 # the first unit's net input and activation
    a: Symbol
    df: Expr                  # its derivative, in z and a
    who: str                  # the units, e.g. "h1 and h2"
    what: str                 # the factor, e.g. "sigmoid'(z_h1) = h1*(1 - h1)"


class Model(quantities.Model):
    """A quantities.Model that also knows the typical wrong answers for each of its quantities."""

    def __init__(self, solution):
        super().__init__(solution)
        self._candidates: dict[tuple, list[Candidate]] = {}

    # -- the family of typical wrong answers ------------------------------------------------------
    def candidates(self, q: Quantity, summed: bool) -> list[Candidate]:
        """Typical wrong answers for q, most telling first; batch sums when ``summed``."""
        key = (*q.about, summed)
        if key not in self._candidates:
            self._candidates[key] = list(self._make_candidates(q, summed))
        return self._candidates[key]

    def _make_candidates(self, q: Quantity, summed: bool) -> Iterable[Candidate]:
        wrap = (lambda e: SampleSum(e)) if summed else (lambda e: e)
        own = {"update": self._update_candidates, "velocity": self._velocity_candidates,
               "local": self._local_candidates}
        if q.kind in own:
            yield from own[q.kind](q)
        for c in self._summed_candidates(q):            # per sample: a batch's sum wraps each
            yield Candidate(c.key, c.reason, wrap(c.expr))
        yield from self._missing_sum_candidates(q)
        yield from self._others(q)

    def _summed_candidates(self, q: Quantity) -> Iterable[Candidate]:
        """The mistakes in one sample's chain (a gradient's, an adjoint's) or forward formula (a value's, the loss's)."""
        if q.kind in ("gradient", "adjoint"):
            chains = self.chains(q.target)
            if chains is not None:
                yield from itertools.chain(self._chain_candidates(q, chains), self._whole_chain_candidates(q))
        elif q.kind == "forward":
            yield from self.forward_candidates(q.target)
        elif q.kind == "loss":
            yield from self.forward_candidates(self.net.loss)

    def _whole_chain_candidates(self, q: Quantity) -> Iterable[Candidate]:
        """The catalogue's slips made everywhere in a gradient's chain, which an exam offers as distractors (the
        constant factors are weighed by the ratio instead, with their own sentences)."""
        if q.kind != "gradient":
            return
        for mistake in gradient_mistakes(self, q.target):
            if mistake.key not in ("sign", "factor"):
                yield Candidate(mistake.key, mistake.label, mistake.formula)

    def _mutate(self, chains, change: Change) -> Expr | None:
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
        yield from self._shared_bias_candidates(q, chains, roles)
        if len(chains) > 1:
            yield from self._path_candidates(q, chains)
        yield from self._output_as_net_input(chains)

    def _activation_candidates(self, chains, l: int, units: list[int]) -> Iterable[Candidate]:
        """Mistakes in the activation factors of layer l, those of ``units`` (the first one names them)."""
        layer = self._layer_units(l, units)
        if not layer.act.identity:
            expr = self._mutate(chains, self._unit_change(l, _one))
            if expr is not None:
                yield Candidate("missing_activation_derivative",
                                f"the factor {layer.what} from the activation of {layer.who} is missing", expr)
        if not layer.act.elementwise:
            yield from self._coupled_candidates(chains, layer)
            return
        yield from self._other_derivative_candidates(chains, layer)
        for slip in layer.act.slips:
            expr = self._mutate(chains, self._unit_change(l, slip.factor))
            yield Candidate("incomplete_activation_derivative",
                            slip.reason.format(a=self.plain[layer.a], what=layer.what), expr)
        if layer.name in self.loss_rule.cancels and l == self.spec.depth - 1:
            yield from self._twice_candidates(chains, layer)
        if layer.act.misplaced:
            yield from self._misplaced_derivative_candidates(chains, layer)

    def _local_candidates(self, q: Quantity) -> Iterable[Candidate]:
        """An activation's own factor da/dz written wrong: the registry's slips, another activation's derivative."""
        a, z = q.target, q.by
        if a not in self.unit or self.unit[a].kind != "a" or z != self.net.nets[self.unit[a].layer][self.unit[a].position]:
            return
        layer = self._layer_units(self.unit[a].layer, [self.unit[a].position])
        for slip in layer.act.slips:
            yield Candidate("incomplete_activation_derivative",
                            slip.reason.format(a=self.plain[a], what=layer.what), slip.factor(z, a))
        for entry in confusable() if layer.act.elementwise else ():
            if entry.name != layer.name:
                yield Candidate("wrong_activation_derivative",
                                f"that is the derivative of {entry.name}, but {self.plain[a]} uses {layer.name}: "
                                f"{layer.what}", entry.df(z, a))

    def _twice_candidates(self, chains, layer: _LayerUnits) -> Iterable[Candidate]:
        """The output's derivative written again after the loss's δ = o − y, where the two already cancelled."""
        expr = self._mutate(chains, self._unit_change(layer.l, lambda z, a: layer.act.df(z, a) ** 2))
        o = self.plain[layer.a]
        yield Candidate("derivative_twice",
                        f"you multiplied by the {layer.name}'s derivative {layer.what} once more: with "
                        f"{self.spec.loss} it cancels against the loss's 1/({o}*(1 - {o})), leaving "
                        f"δ = {o} - y (over N)", expr)

    def _output_as_net_input(self, chains) -> Iterable[Candidate]:
        """The output layer's activation left out, as if it were linear: z for o everywhere (δ = z − y)."""
        l = self.spec.depth - 1
        act = self.net.activation(l)
        if act.identity:
            return
        outputs = dict(zip(self.net.activations[l], self.net.nets[l]))
        o, z = self.plain[self.net.activations[l][0]], self.plain[self.net.nets[l][0]]
        reason = f"the output {o} is {self.spec.activations[l]}({z}), not the net input {z} itself"
        everywhere = self._mutate(chains, lambda r, f: f.xreplace(outputs) if f.has(*outputs) else None)
        if everywhere is not None:              # δ = z − y: the whole layer taken as linear
            yield Candidate("linear_output", reason + ": the output layer is not linear", everywhere)
        in_loss = self._mutate(chains, lambda r, f: f.xreplace(outputs) if r[0] == "loss" else None)
        if in_loss is not None:                 # (z − y)·σ′: z for o in the loss's derivative alone
            yield Candidate("linear_output", reason + f": the loss's derivative is taken at {o}", in_loss)

    def _missing_sum_candidates(self, q: Quantity) -> Iterable[Candidate]:
        """One sample's part of a batch's gradient, for the whole of it (the Σ over the samples left out)."""
        if q.kind != "gradient" or self.N == 1:
            return
        adjoint, name = self.d.adjoint[q.target], self.plain[q.target]
        for k in range(self.N):
            yield Candidate("missing_sum", f"that is sample {k + 1}'s part de/d{name}[{k + 1}]; dE/d{name} sums it "
                                           f"over the {self.N} samples", self.indexed(adjoint, k + 1, UNWRITTEN))

    def _layer_units(self, l: int, units: list[int]) -> _LayerUnits:
        """Layer l's activation and the words the reasons use for its factors of ``units``."""
        net = self.net
        act = net.activation(l)
        z, a = net.nets[l][units[0]], net.activations[l][units[0]]
        df = act.df(z, a)
        what = f"{self.spec.activations[l]}'({self.plain[z]})"
        what += "" if self.show(df) == what else f" = {self.show(df)}"
        who = " and ".join(self.plain[net.activations[l][j]] for j in units)
        return _LayerUnits(l, self.spec.activations[l], act, z, a, df, who, what)

    def _unit_change(self, l: int, factor: UnitFactor) -> Change:
        """Each activation factor ∂a_j/∂z_i of layer l replaced by factor(z_j, a_j)."""
        zs, acts = self.net.nets[l], self.net.activations[l]

        def change(r: tuple, f: Expr) -> Expr | None:
            return factor(zs[r[2]], acts[r[2]]) if _in_layer(r, l) else None
        return change

    def _coupled_candidates(self, chains, layer: _LayerUnits) -> Iterable[Candidate]:
        """A layer whose units are coupled (softmax): a sigmoid's derivative after the loss's δ = o − y, where the
        two cancel, or only the Jacobian's diagonal kept."""
        if layer.name in self.loss_rule.cancels:
            expr = self._mutate(chains, _times_sigmoid_derivative(layer.l, self.net.activations[layer.l]))
            o = self.plain[layer.a]
            yield Candidate("sigmoid_derivative_on_softmax",
                            f"the softmax with cross-entropy already gives the error signal δ = o - y (over N), "
                            f"the softmax's derivative cancelling against the loss's; there is no factor "
                            f"{o}*(1 - {o}) of a sigmoid to multiply by", expr)
        expr = self._mutate(chains, _dropping_off_diagonal(layer.l))
        if expr is not None:
            yield Candidate("softmax_diagonal",
                            "the softmax couples its outputs: each o_i depends on every net input, "
                            "d(o_i)/d(z_j) = o_i*(1 - o_j) for i = j and -o_i*o_j otherwise, and you kept only the "
                            "terms with i = j", expr)

    def _other_derivative_candidates(self, chains, layer: _LayerUnits) -> Iterable[Candidate]:
        """The derivative of another activation (sigmoid, tanh, ReLU) in place of the layer's own."""
        for entry in confusable():
            other, odf = entry.name, entry.df
            if other == layer.name:
                continue
            expr = self._mutate(chains, self._unit_change(layer.l, odf))
            if layer.act.identity:
                reason = (f"{layer.who} is linear (its derivative is 1), but you multiplied by the derivative of "
                          f"{other}, {self.show(odf(layer.z, layer.a))}")
            else:
                reason = (f"you used the derivative of {other}, {self.show(odf(layer.z, layer.a))}, but {layer.who} "
                          f"uses {layer.name}, so the factor is {layer.what}")
            if expr is not None:
                yield Candidate("wrong_activation_derivative", reason, expr)

    def _misplaced_derivative_candidates(self, chains, layer: _LayerUnits) -> Iterable[Candidate]:
        """The activation for its derivative, or the derivative taken at the output or written with z for a."""
        act, z, a, plain = layer.act, layer.z, layer.a, self.plain
        # a change that changes nothing (softplus' = σ(z) has no a to write as z) is no mistake: _mutate gives None
        expr = self._mutate(chains, self._unit_change(layer.l, _output))
        if expr is not None:
            yield Candidate("activation_instead_of_derivative",
                            f"you multiplied by the activation {plain[a]} itself instead of its derivative "
                            f"{layer.what}", expr)
        expr = self._mutate(chains, self._unit_change(layer.l, _at_output(act)))
        if expr is not None:
            yield Candidate("derivative_at_output",
                            f"the derivative is taken at the net input {plain[z]}, not at the output "
                            f"{plain[a]}: {layer.what}, not {layer.name}'({plain[a]})", expr)
        expr = self._mutate(chains, self._unit_change(layer.l, _at_net_input(act)))
        if expr is not None:
            yield Candidate("derivative_at_net_input",
                            f"{self.show(layer.df)} is written with the output {plain[a]}, not the net input "
                            f"{plain[z]} (you wrote {self.show(act.df(z, z))})", expr)

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
            for m, units in enumerate(layers):
                if m == l or k >= len(units):
                    continue
                alt = units[k]
                if m == 0:
                    reason = (f"the input to layer {l + 1} is {name[true]} (what {name[w]} multiplies), not the "
                              f"network input {name[alt]}")
                else:
                    reason = f"{name[w]} multiplies {name[true]}, the input of layer {l + 1}, not {name[alt]}"
                yield Candidate("wrong_input", reason, self._mutate(chains, _replacing(role, alt)))
            own = net.activations[l][j]
            yield Candidate("wrong_input",
                            f"d{name[net.nets[l][j]]}/d{name[w]} is the input {name[true]} that {name[w]} multiplies, "
                            f"not the unit's own output {name[own]}",
                            self._mutate(chains, _replacing(role, own)))
            for k2, alt in enumerate(net.layer_input(l)):
                if k2 != k:
                    yield Candidate("wrong_input",
                                    f"{name[w]} multiplies {name[true]}, not {name[alt]}",
                                    self._mutate(chains, _replacing(role, alt)))

    def _weight_candidates(self, chains, roles) -> Iterable[Candidate]:
        net, name = self.net, self.plain
        weights = list(dict.fromkeys(r for r in roles if r[0] == "weight"))
        for l in sorted({r[1] for r in weights}, reverse=True):
            W = net.weights[l]
            here = [r for r in weights if r[1] == l]
            if all(k < len(W) and j < len(W[k]) for _, _, j, k in here):
                _, _, j, k = next((r for r in here if r[2] != r[3]), here[0])
                src, dst = net.layer_input(l)[k], net.activations[l][j]
                expr = self._mutate(chains, _transposing(l, W))
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
                                    self._mutate(chains, _replacing(role, w2)))

    def _shared_bias_candidates(self, q: Quantity, chains, roles) -> Iterable[Candidate]:
        """A shared bias feeds every unit of its layer: dE/db1 sums their δs; one δ alone is a typical answer."""
        units = sorted({(r[1], r[2]) for r in roles if r[0] == "bias"})
        if len(units) < 2 or q.target not in self.bpos:
            return
        deltas = [self.display[self.d.adjoint[self.net.nets[l][j]]] for l, j in units]
        for (l, j), delta in zip(units, deltas):
            kept = [chain for chain in chains if any(r == ("bias", l, j) for r, _ in chain)]
            yield Candidate("shared_bias",
                            f"{self.plain[q.target]} is shared by the {len(units)} units of layer {l + 1}, so "
                            f"{q.label.split('[')[0]} sums all their error signals ({' + '.join(deltas)}), "
                            f"not only {delta}", _total(kept))

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
        coupled = {l for l in range(self.spec.depth) if not self.net.activation(l).elementwise}

        def unit(l: int, i: int) -> str:
            return self.plain[self.net.nets[l][i] if l in coupled else self.net.activations[l][i]]
        names = [" and ".join(unit(l, i) for l, i in sorted(set(k) - common, key=lambda u: (-u[0], u[1])))
                 or "another unit" for k in keys]
        total = len(keys)
        what = q.label.split("[")[0]

        def total_of(selected) -> Expr:
            return _total([c for k in selected for c in groups[k]])
        for i, k in enumerate(keys):
            yield Candidate("missing_path",
                            f"{what} sums over {total} paths (one through each of {', '.join(names)}); the path "
                            f"through {names[i]} is missing", total_of([k2 for k2 in keys if k2 != k]))
        if total > 2:
            for i, k in enumerate(keys):
                yield Candidate("missing_path", f"only the path through {names[i]} is counted, but {what} sums over "
                                                f"all {total} paths", total_of([k]))

    def forward_candidates(self, s: Symbol) -> Iterable[Candidate]:
        """Wrong definitions of a computed value: the loss, a net input z or an activation a."""
        if s == self.net.loss:
            yield from self._loss_term_candidates()
            return
        kind, l, j = self.unit[s]
        if kind == "z":
            yield from self._net_input_candidates(s, l, j)
        else:
            yield from self._activation_function_candidates(s, l, j)

    def _loss_term_candidates(self) -> Iterable[Candidate]:
        """A loss over several outputs with one output's term left out."""
        net, name = self.net, self.plain
        outputs = net.outputs
        if len(outputs) > 1:
            rule = self.loss_rule
            scale = rule.scale(self.N, self.J)
            for o in outputs:
                rest = sp.Add(*(rule.term(o2, y2) for o2, y2 in zip(outputs, net.targets) if o2 != o))
                yield Candidate("missing_term",
                                f"the loss sums over all {len(outputs)} outputs; the term of {name[o]} is missing",
                                scale * rest)

    def _net_input_candidates(self, s: Symbol, l: int, j: int) -> Iterable[Candidate]:
        """z = Σ w·x + b written without the bias, with the transposed weights, or with the network's inputs."""
        net, name = self.net, self.plain
        definition = net.definitions[s]
        inputs = net.layer_input(l)
        for b in net.biases[l][j:j + 1]:
            yield Candidate("missing_bias", f"{name[s]} includes the bias {name[b]}", definition.xreplace({b: 0}),
                            f"the bias {name[b]} left out")
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

    def _activation_function_candidates(self, s: Symbol, l: int, j: int) -> Iterable[Candidate]:
        """a = f(z) with the sigmoid written wrong, with another activation, or with none."""
        name = self.plain
        act_name, act = self.spec.activations[l], self.net.activation(l)
        z = self.net.nets[l][j]
        for wrong in act.miswritten if act.elementwise else ():
            yield Candidate(wrong.key, wrong.reason, wrong.f(z))
        if not act.identity:
            yield Candidate("wrong_activation", f"the activation is missing: {name[s]} = {act_name}({name[z]}), not the "
                            f"net input {name[z]} itself", z, f"the activation function left out ({name[z]})")
        if not act.elementwise:
            return
        for other in confusable():
            if other.name != act_name:
                yield Candidate("wrong_activation", f"{name[s]} = {act_name}({name[z]}), not {other.name}({name[z]})",
                                other.f(z))

    def _update_candidates(self, q: Quantity) -> Iterable[Candidate]:
        p = q.target
        name = self.plain[p]
        g = self.truth(Quantity("gradient", "", self.grad[p], p, False, None))
        rule = f"{name}' = {name} - {self.rate_text(p)}*dE/d{name}"
        if p in self.frozen:
            yield Candidate("frozen", f"{name} is frozen ([train].freeze), so the update leaves it unchanged",
                            p - self.step(p, g))
            return
        decayed = p in self.decay
        if decayed:
            rule = f"{name}' = {name} - {self.rate_text(p)}*(dE/d{name} + lambda*{name})"
        for other in sorted(set(self.rates.values()) - {self.rates[p]}):      # another layer's learning rate
            yield Candidate("wrong_rate", f"{name}'s layer has the learning rate {number(self.rates[p]).plain}, "
                                          f"not {number(other).plain}",
                            p - other / self.rates[p] * self.step(p, g))
        words = {"p": name, "rule": rule, "rate": self.rate_text(p), "eta": number(self.rates[p]).plain}
        for slip in UPDATE_SLIPS:
            if slip.reason is not None and (decayed or not slip.decay_only):
                yield Candidate(slip.key, slip.reason.format(**words),
                                slip.value(p, self.rate(p), g, self.lam * p if decayed else sp.S.Zero))
        for c in self.candidates(Quantity("gradient", f"dE/d{name}", self.grad[p], p, False, None), self.N > 1):
            if c.key != "mislabel":
                yield Candidate(c.key, "in the gradient, " + c.reason, p - self.step(p, c.expr))

    def _velocity_candidates(self, q: Quantity) -> Iterable[Candidate]:
        """v_w5 after the first update: the step, so its mistakes are the update's less the parameter."""
        p = q.target
        for c in self._update_candidates(q):
            if c.key not in ("no_update", "missing_parameter"):
                yield Candidate(c.key, c.reason, c.expr - p)
        yield Candidate("velocity_is_update", f"v_{self.plain[p]} is the change of {self.plain[p]}, not its new value "
                                              f"{self.plain[p]}'", p - self.step(p, self.truth(self.gradient_of(p))))

    def _others(self, q: Quantity) -> Iterable[Candidate]:
        """Other quantities of the same kind: an answer computed right but for the wrong name."""
        kind = q.kind
        if kind == "adjoint" and (q.target in self.wpos or q.target in self.bpos):
            kind = "parameter_adjoint"             # de/dw5[n]: another parameter's part of sample n
        others = {"gradient": self._other_gradients, "update": self._other_updates,
                  "parameter_adjoint": self._other_parameter_adjoints, "adjoint": self._other_adjoints,
                  "forward": self._other_values, "after": self._other_values,
                  "loss_after": self._loss_before_update, "loss": self._loss_after_update}
        if kind in others:
            yield from others[kind](q)

    def _other_parameters(self, q: Quantity) -> list[Symbol]:
        return [p for p in self.net.parameters if p != q.target]

    def _other_gradients(self, q: Quantity) -> Iterable[Candidate]:
        for p in self._other_parameters(q):
            yield Candidate("mislabel", f"that is dE/d{self.plain[p]}, not {q.label}", self.grad[p])

    def _other_updates(self, q: Quantity) -> Iterable[Candidate]:
        for p in self._other_parameters(q):
            yield Candidate("mislabel", f"that is the value of {self.plain[p]}', not {q.label}", self.after[p])

    def _other_parameter_adjoints(self, q: Quantity) -> Iterable[Candidate]:
        adjoint = self.d.adjoint
        for p in self._other_parameters(q):
            yield Candidate("mislabel", f"that is {self.display[adjoint[p]]}, not {q.label}", adjoint[p])

    def _other_adjoints(self, q: Quantity) -> Iterable[Candidate]:
        """δ for dE/da or the other way round (the activation's derivative), then the other units' adjoints."""
        net, d = self.net, self.d
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

    def _other_values(self, q: Quantity) -> Iterable[Candidate]:
        """A computed value before or after the update where the other is claimed, then the other values."""
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

    def _loss_before_update(self, q: Quantity) -> Iterable[Candidate]:
        yield Candidate("before_update", "that is E before the update; E' is computed with the updated parameters",
                        self.E)

    def _loss_after_update(self, q: Quantity) -> Iterable[Candidate]:
        yield Candidate("after_update", "that is E' after the update, not E", self.after[self.E])


class UpdateSlip(NamedTuple):
    """A typical wrong p′ after one step of gradient descent: its key, an exam's label and the checker's reason
    (None where that one does not offer it; {p}, {rule}, {rate}, {eta} filled in), and p′ from (p, η, ∂E/∂p, λp)."""

    key: str
    label: str | None
    reason: str | None
    value: Callable[[Expr, Expr, Expr, Expr], Expr]
    decay_only: bool = False            # a mistake only with weight decay


UPDATE_SLIPS = (
    UpdateSlip("zero", "the answer 0", None, lambda p, eta, g, decay: sp.S.Zero),
    UpdateSlip("no_update", "{p} before the update", "{p}' is {p} after one step of gradient descent",
               lambda p, eta, g, decay: p),
    UpdateSlip("update_sign", "the step taken uphill", "gradient descent steps against the gradient: {rule}",
               lambda p, eta, g, decay: p + eta * (g + decay)),
    UpdateSlip("decay_dropped", "the weight decay dropped",
               "with weight decay the step adds lambda*{p} to the gradient: {rule}",
               lambda p, eta, g, decay: p - eta * g, decay_only=True),
    UpdateSlip("missing_learning_rate", None, "the step is the gradient times the learning rate {rate} = {eta}",
               lambda p, eta, g, decay: p - (g + decay)),
    UpdateSlip("missing_parameter", None, "the update starts from the current value: {rule}",
               lambda p, eta, g, decay: -eta * (g + decay)),
)


def loss_mistakes(m: Model) -> list[Mistake]:
    """The loss with another constant in front (the ½ or the mean of a related loss, or the plain sum), as
    formulas in the loss E."""
    own = m.loss_rule.scale(m.N, m.J)
    related = [rule for rule in LOSSES.values() if rule.square] if m.loss_rule.square else []
    scales = [rule.scale(m.N, m.J) for rule in related] + [own / abs(own)]
    return [Mistake("factor", f"the constant {c} in front instead of {own}", m.E * c / own)
            for c in dict.fromkeys(scales) if c != own]


# -- the catalogue's whole-chain mistakes: an exam's distractors, and candidates of a diagnosis ------------

@dataclass(frozen=True)
class Mistake:
    """A typical wrong ∂E/∂p of one sample, over its whole chain: its key, a short label (an exam's feedback
    and the checker's reason) and its formula."""

    key: str
    label: str
    formula: Expr


def gradient_mistakes(m: Model, p: Symbol) -> list[Mistake]:
    """The typical wrong versions of one sample's ∂E/∂p, most typical first, each differing from the truth.

    The same slip made everywhere in the chain (every σ′ dropped, every f′ taken at its output), a constant
    factor from the table of factors (the sign, the 2, the mean's 1/N), x for h, one output's path alone.
    """
    chains = m.chains(p, limit=False) or []
    right = _total(chains)
    parts = factor_parts(m)
    out = [_dropped_slopes(m, chains), Mistake("sign", SIGN_FLIPPED, -right)]
    out += [Mistake("factor", f.label, right * _rational(f.c)) for f in parts if f.label and f.label != MEAN_DROPPED]
    out += [*_wrong_layer_input(m, p, chains), _slopes_at_output(m, chains), *_first_path_alone(m, chains)]
    out += [Mistake("factor", f.label, right * _rational(f.c)) for f in parts if f.label == MEAN_DROPPED]
    return [mistake for mistake in out if sp.expand(mistake.formula - right) != 0]


def _rational(c: Fraction) -> Expr:
    return sp.Rational(c.numerator, c.denominator)


def _total(chains) -> Expr:
    """The sum over chains of the product of their factors."""
    return sp.Add(*(sp.Mul(*(f for _, f in chain)) for chain in chains))


def _changed(m: Model, chains, change: Change) -> Expr:
    """The sum over chains with ``change`` applied to their factors (the truth where it changes none)."""
    changed = m._mutate(chains, change)
    return _total(chains) if changed is None else changed


def _dropped_slopes(m: Model, chains) -> Mistake:
    """Every activation's f′ left out of the chain (none is a factor of its own for a linear or softmax layer)."""
    acts = [m.net.activation(l) for l in range(m.spec.depth)]
    names = sorted({f"{a.word}′" for a in acts if a.df_factor})
    formula = _changed(m, chains, lambda r, f: sp.S.One if r[0] == "act" and acts[r[1]].df_factor else None)
    return Mistake("missing_activation_derivative", f"the activation derivative ({', '.join(names) or 'f′'}) left out",
                   formula)


def _slopes_at_output(m: Model, chains) -> Mistake:
    """Every f′ written in a (σ′ = a(1 − a)) taken at the output a instead of the net input z: σ(o)(1 − σ(o))."""
    net = m.net

    def change(r: tuple, f: Expr) -> Expr | None:
        if r[0] != "act" or not net.activation(r[1]).df_in_a:
            return None
        act, a = net.activation(r[1]), net.activations[r[1]][r[2]]
        return act.df(a, act.f(a))
    return Mistake("derivative_at_output", "the activation derivative taken at the output instead of the net input",
                   _changed(m, chains, change))


def _wrong_layer_input(m: Model, p: Symbol, chains) -> list[Mistake]:
    """A weight's input taken from the wrong place: the network's x for a hidden layer's h, or the other x."""
    if p not in m.wpos:
        return []
    net = m.net
    l, j, k = m.wpos[p]
    instead = net.layer_input(l)[k]
    if l > 0:
        used = net.inputs[k % len(net.inputs)]
    elif len(net.inputs) > 1:
        used = net.inputs[(k + 1) % len(net.inputs)]
    else:
        return []
    formula = _changed(m, chains, lambda r, f: used if r == ("input", l, j, k) and f == instead else None)
    return [Mistake("wrong_input", f"the wrong input ({m.plain[used]} instead of {m.plain[instead]})", formula)]


def _first_path_alone(m: Model, chains) -> list[Mistake]:
    """Only the chains through the first output, where there are several outputs."""
    outputs = m.net.outputs
    if len(outputs) < 2:
        return []
    first = outputs[0]
    kept = [chain for chain in chains if chain[0][0] == ("loss", first)]
    return [Mistake("missing_path", f"only the path through {m.plain[first]} (the other paths left out)",
                    _total(kept))]


_MODELS: WeakKeyDictionary = WeakKeyDictionary()


def model(solution) -> Model:
    """The Model of a Solution, built on first use and kept while the Solution lives.

    Online and in mini-batches the claims are about the first update as the worked solution shows
    it: on the first batch's samples, as a batch of their own.
    """
    m = _MODELS.get(solution)
    if m is None:
        m = _MODELS[solution] = Model(solution.first_update)
    return m


class Factor(NamedTuple):
    """A mistaken constant factor (the claim is c × the truth): how unlikely it is, the checker's reason, and the
    exam's short label where an exam offers it as a distractor."""

    c: Fraction
    cost: int
    reason: str
    label: str | None = None


MEAN_DROPPED = "the 1/N of the mean dropped"
SIGN_FLIPPED = "the sign flipped"


def factor_parts(m: Model) -> list[Factor]:
    """Single mistaken factors (the claim is c × the truth), each with its cost and its reason."""
    rule = m.loss_rule
    squared, half, mean_n, mean_j = rule.square, rule.halved, rule.averages, rule.averages_outputs
    parts = []
    if squared:
        parts.append(Factor(Fraction(1, 2), 1, "the factor 2 from differentiating the square is missing",
                            None if half else "the factor 2 from the square dropped"))
        parts.append(Factor(Fraction(2), 1 if half else 2,
                            "there is an extra factor 2: the ½ in front of the loss cancels the 2 from the square"
                            if half else "there is an extra factor 2",
                            "a factor 2 too many (the ½ of the loss not cancelled)" if half else None))
    else:
        parts += [Factor(Fraction(1, 2), 2, "a factor 2 is missing"), Factor(Fraction(2), 2, "there is an extra factor 2")]
    if m.N > 1:
        parts.append(Factor(Fraction(m.N), 1 if mean_n else 2,
                            f"the 1/N from averaging over the N = {m.N} samples is missing" if mean_n
                            else f"there is an extra factor N = {m.N}", MEAN_DROPPED if mean_n else None))
        parts.append(Factor(Fraction(1, m.N), 2 if mean_n else 1,
                            f"there is an extra 1/N: this loss sums over the {m.N} samples, it does not average"
                            if not mean_n else f"there is an extra 1/N = 1/{m.N}"))
    if m.J > 1:
        parts.append(Factor(Fraction(m.J), 1 if mean_j else 2,
                            f"the 1/J from averaging over the J = {m.J} outputs is missing" if mean_j
                            else f"there is an extra factor J = {m.J}"))
        parts.append(Factor(Fraction(1, m.J), 2, f"there is an extra 1/J = 1/{m.J}"))
    return parts
