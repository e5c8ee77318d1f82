"""Names of every quantity: its LaTeX, its plain-text name a user can type, and its meaning."""

from __future__ import annotations

import re
from dataclasses import dataclass

from derive.model.convention import Convention
from derive.model.registry import claim_spellings

# [notation].symbols: a user's own names for the matrices (Seth's W_ih, Patel's H1). A name is a letter, then
# letters or digits, then at most one subscript after _; its LaTeX is made from that shape alone (symbol_latex),
# so nothing a user types ever reaches TeX, Markdown or HTML as markup.
SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]{0,11}(?:_[A-Za-z0-9]{1,8})?")
# stems LaTeX writes as a Greek letter (Delta1 → \Delta_{1}); the lower-case ones a claim reads as constants
# (eta, lambda, alpha) are reserved below
GREEK = frozenset({"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega", "beta", "gamma",
                   "delta", "epsilon", "zeta", "theta", "kappa", "xi", "pi", "rho", "tau", "phi", "chi", "psi",
                   "omega"})
# names `derive check` already gives a meaning of its own: the loss's words, N and J, the rates and the decay,
# the functions of a claim (and every activation's spelling, added where it is used)
RESERVED = frozenset({"E", "L", "C", "J", "N", "e", "Etotal", "Etot", "Error", "Loss", "Cost", "error", "loss",
                      "cost", "eta", "alpha", "lr", "lambda", "lam", "mu", "sum", "diag", "exp", "ln", "log",
                      "sqrt", "max", "min"})
# the checker's other spellings of the matrices (dW1, dE, delta1, z1, a1, A0, x, y): never a user's symbol
READ_ALREADY = re.compile(r"d[A-Z].*|delta\d.*|[za]\d+|A0|[xy]")
MATRIX_KINDS = ("W", "b", "Z", "A", "Delta")            # a layer's matrices, as [notation].symbols keys them


@dataclass(frozen=True)
class Name:
    """How one quantity is written: on the page, in plain text, and in words."""

    latex: str
    plain: str
    meaning: str


def _pair(j: int, k: int) -> str:
    """Two 1-based indices run together (``21``), or apart (``2_11``) once one has two digits."""
    return f"{j}{k}" if j < 10 and k < 10 else f"{j}_{k}"


def symbol_latex(name: str) -> str:
    """The LaTeX of a validated symbol: W_ih → W_{ih}, H1 → H_{1}, Delta2 → \\Delta_{2}, Err → \\mathit{Err}."""
    stem, _, sub = name.partition("_")
    digits = re.fullmatch(r"([A-Za-z]+?)(\d+)", stem) if not sub else None
    if digits:
        stem, sub = digits[1], digits[2]
    head = "\\" + stem if stem in GREEK else stem if len(stem) == 1 else rf"\mathit{{{stem}}}"
    return f"{head}_{{{sub}}}" if sub else head


def symbol_problem(name: object) -> str:
    """What is wrong with a [notation].symbols value (empty when nothing is)."""
    if not isinstance(name, str) or not SYMBOL.fullmatch(name):
        return ("expected a name: a letter, then letters or digits, optionally one _ and a subscript of letters "
                "or digits, such as W_ih, H1 or T")
    if name in RESERVED or name in claim_spellings() or READ_ALREADY.fullmatch(name):
        return f"{name} already means something else to derive check; choose another name"
    return ""


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
    symbols: tuple[tuple[str, str], ...] = ()   # [notation].symbols: derive's matrix name → the user's (A2 → O)

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

    # -- matrices (the matrix form, the setup's and the update's matrices, matrix claims) ---------
    def matrix_keys(self) -> tuple[str, ...]:
        """derive's own names of the matrices, as [notation].symbols keys them: X, Y, W1, b1, Z1, A1, Delta1 …

        Not the loss E: it is a scalar of every section, and a letter of the matrix form's own (Patel's L) would
        stand beside ∂E/∂w of the others (derive check reads any capital letter as the loss)."""
        keys = ["X", "Y"]
        for l in range(1, self.depth + 1):
            keys += [f"{kind}{l}" for kind in MATRIX_KINDS if kind != "b" or self.bias[l - 1] != "none"]
        return tuple(keys)

    def _own(self, key: str, latex: str) -> tuple[str, str]:
        """LaTeX and plain name of the matrix ``key``: the user's symbol where [notation].symbols gives one."""
        own = dict(self.symbols).get(key)
        return (symbol_latex(own), own) if own else (latex, key)

    def shown(self, key: str) -> str:
        """derive's plain name of a matrix or of its gradient (A2, dE/dW2) as the documents print it (O, dE/dW_ho)."""
        own = dict(self.symbols)
        if key.startswith("dE/d"):
            return f"dE/d{own.get(key[4:], key[4:])}"
        return own.get(key, key)

    def loss_matrix(self) -> Name:
        """The loss as the matrix-level documents write it: E, as every section does."""
        return Name("E", "E", "loss")

    def matrix(self, kind: str, l: int = 0) -> Name:
        """The matrix X, Y, or W, b, Z, A, Delta of layer l (1-based): W^{(1)}, ``W1`` or the user's symbol."""
        if kind in ("X", "Y"):
            each = "row" if self.convention.rows else "column"
            latex, plain = self._own(kind, kind)
            return Name(latex, plain, f"{'inputs' if kind == 'X' else 'targets'}, one {each} per sample")
        default = (r"\Delta" if kind == "Delta" else kind) + f"^{{({l})}}"
        latex, plain = self._own(f"{kind}{l}", default)
        return Name(latex, plain, self._layer_meaning(kind, l))

    def _layer_meaning(self, kind: str, l: int) -> str:
        shared = self.bias[l - 1] == "shared"
        weights = ("one row per input, one column per unit" if self.convention.stored_in_out
                   else "one row per unit, one column per input")
        return {"W": f"weights of layer {l}: {weights}",
                "b": f"bias shared by the units of layer {l}" if shared else f"biases of layer {l}",
                "Z": f"net inputs of layer {l}",
                "A": "outputs" if l == self.depth else f"activations of layer {l}",
                "Delta": f"error signals ∂{self.loss_matrix().plain}/∂Z of layer {l}"}[kind]

    def rate(self, group: str) -> Name:
        """The learning rate of a layer's weights or biases (group "W1", "b2"): η_{W^{(1)}}, or η_{W_ih} in the
        user's symbols."""
        m = self.matrix(group[0], int(group[1:]))
        return Name(rf"\eta_{{{m.latex}}}", f"eta_{m.plain}", f"learning rate of the {m.meaning}")

    def matrix_gradient(self, kind: str, l: int) -> Name:
        """∂E/∂W^{(l)}, ∂E/∂b^{(l)} or ∂E/∂A^{(l)} (plain ``dE/dW1``), in the symbols where they are given."""
        e, m = self.loss_matrix(), self.matrix(kind, l)
        what = {"W": f"every weight of layer {l}", "A": "every output",
                "b": f"the bias{'' if self.bias[l - 1] == 'shared' else 'es'} of layer {l}"}[kind]
        return Name(rf"\frac{{\partial {e.latex}}}{{\partial {m.latex}}}", f"d{e.plain}/d{m.plain}",
                    f"derivative of the loss with respect to {what}")
