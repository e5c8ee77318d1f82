"""Names of every quantity: its LaTeX, its plain-text name a user can type, and its meaning."""

from __future__ import annotations

from dataclasses import dataclass

from derive.model.convention import Convention


@dataclass(frozen=True)
class Name:
    """How one quantity is written: on the page, in plain text, and in words."""

    latex: str
    plain: str
    meaning: str


def _pair(j: int, k: int) -> str:
    """Two 1-based indices run together (``21``), or apart (``2_11``) once one has two digits."""
    return f"{j}{k}" if j < 10 and k < 10 else f"{j}_{k}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@dataclass(frozen=True)
class Notation:
    """The naming scheme of one network; all indices passed in are 0-based.

    ``indexed``: w^{(l)}_{jk}, b^{(l)}_j, z^{(l)}_j, a^{(l)}_j (plain ``w2_11``, ``b1_2``, ``a1_2``).
    ``sequential``: w_1 … w_n layer by layer, target unit first; hidden units h_1 … h_m across
    the hidden layers; outputs o_1 …; net inputs z_{h_1}, z_{o_1}; deltas δ_{h_1}, δ_{o_1}.
    Where the convention stores W input × output (``row``, ``transposed``) the weight's indices follow its
    place in W (source row, target column).
    """

    layers: tuple[int, ...]
    bias: tuple[str, ...]           # per layer after the input: "none", "neuron" or "shared"
    style: str
    convention: Convention

    @property
    def depth(self) -> int:
        return len(self.layers) - 1

    # -- data ---------------------------------------------------------------------------
    def input(self, k: int) -> Name:
        return Name(f"x_{{{k + 1}}}", f"x{k + 1}", f"input {k + 1}")

    def target(self, j: int) -> Name:
        if self.layers[-1] == 1:
            return Name("y", "y", "target")
        return Name(f"y_{{{j + 1}}}", f"y{j + 1}", f"target of output {j + 1}")

    def loss(self, samples: int) -> Name:
        if samples == 1:
            return Name("E", "E", "loss")
        return Name("e", "e", "one sample's contribution to the loss")

    # -- parameters ----------------------------------------------------------------------
    def weight(self, l: int, j: int, k: int) -> Name:
        """Weight of layer l+1 from unit k of the layer below to unit j."""
        meaning = f"weight from unit {k + 1} of layer {l} to unit {j + 1} of layer {l + 1}"
        if self.style == "sequential":
            i = sum(self.layers[m + 1] * self.layers[m] for m in range(l)) + j * self.layers[l] + k + 1
            return Name(f"w_{{{i}}}", f"w{i}", meaning)
        r, c = (k, j) if self.convention.stored_in_out else (j, k)
        return Name(f"w^{{({l + 1})}}_{{{_pair(r + 1, c + 1)}}}", f"w{l + 1}_{_pair(r + 1, c + 1)}", meaning)

    def bias_name(self, l: int, j: int) -> Name:
        """Bias of unit j of layer l+1 (the layer's single bias when shared). Sequential names count the
        biases of the layers below: b1, b2 for two units, then b3 for a shared bias above them."""
        below = sum({"neuron": self.layers[m + 1], "shared": 1}.get(self.bias[m], 0) for m in range(l))
        if self.bias[l] == "shared":
            meaning = f"bias shared by the units of layer {l + 1}"
            if self.style == "sequential":
                return Name(f"b_{{{below + 1}}}", f"b{below + 1}", meaning)
            return Name(f"b^{{({l + 1})}}", f"b{l + 1}", meaning)
        meaning = f"bias of unit {j + 1} of layer {l + 1}"
        if self.style == "sequential":
            i = below + j + 1
            return Name(f"b_{{{i}}}", f"b{i}", meaning)
        return Name(f"b^{{({l + 1})}}_{{{j + 1}}}", f"b{l + 1}_{j + 1}", meaning)

    # -- units ---------------------------------------------------------------------------
    def _unit(self, l: int, j: int) -> tuple[str, str]:
        """LaTeX and plain stem of unit j of layer l+1: ``o``/``o_1``, ``h_3`` or ``a^{(1)}_2``."""
        if l == self.depth - 1:
            return ("o", "o") if self.layers[-1] == 1 else (f"o_{{{j + 1}}}", f"o{j + 1}")
        if self.style == "sequential":
            i = sum(self.layers[m + 1] for m in range(l)) + j + 1
            return f"h_{{{i}}}", f"h{i}"
        return f"a^{{({l + 1})}}_{{{j + 1}}}", f"a{l + 1}_{j + 1}"

    def activation(self, l: int, j: int) -> Name:
        latex, plain = self._unit(l, j)
        where = "output" if l == self.depth - 1 else f"{_ordinal(l + 1)} hidden layer"
        return Name(latex, plain, f"activation of unit {j + 1} of the {where}")

    def net(self, l: int, j: int) -> Name:
        latex, plain = self._unit(l, j)
        meaning = f"net input of {plain}"
        if self.style == "sequential" or l == self.depth - 1:
            return Name(f"z_{{{latex}}}", f"z_{plain}", meaning)
        return Name(f"z^{{({l + 1})}}_{{{j + 1}}}", f"z{l + 1}_{j + 1}", meaning)

    def plain_names(self) -> frozenset[str]:
        """Every plain name of the network's values (x1, w5, z_h1, h1, delta_o …) and of the matrices of its
        matrix form (W1, b1, Z1, A1, Delta1, X, Y), as `derive check` reads them."""
        names = {self.input(k).plain for k in range(self.layers[0])}
        names |= {self.target(j).plain for j in range(self.layers[-1])} | {"X", "Y"}
        for l in range(self.depth):
            names |= {f"W{l + 1}", f"Z{l + 1}", f"A{l + 1}", f"Delta{l + 1}"}
            names |= {f"b{l + 1}"} if self.bias[l] != "none" else set()
            for j in range(self.layers[l + 1]):
                names |= {self.weight(l, j, k).plain for k in range(self.layers[l])}
                names |= {self.activation(l, j).plain, self.net(l, j).plain, self.delta(l, j).plain}
                names |= {self.bias_name(l, j).plain} if self.bias[l] != "none" else set()
        return frozenset(names)

    def delta(self, l: int, j: int) -> Name:
        latex, plain = self._unit(l, j)
        meaning = f"error signal ∂E/∂z of {plain}"
        if self.style == "sequential" or l == self.depth - 1:
            return Name(rf"\delta_{{{latex}}}", f"delta_{plain}", meaning)
        return Name(rf"\delta^{{({l + 1})}}_{{{j + 1}}}", f"delta{l + 1}_{j + 1}", meaning)
