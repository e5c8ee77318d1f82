"""Activations and losses as registry entries: expression, local derivative, printed name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import sympy as sp
from sympy import Expr, Rational


class Sigmoid(sp.Function):
    """σ(z) = 1/(1 + e^(−z)), kept as one function so formulas read σ(z), not a fraction."""

    nargs = 1

    def fdiff(self, argindex=1):
        s = Sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, z):
        if z.is_zero:
            return Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return 1 / (1 + sp.exp(-z))

    def _eval_evalf(self, prec):
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real


class ReLU(sp.Function):
    """max(0, z), with the derivative taken as 0 at z = 0 (the contract's choice)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    @classmethod
    def eval(cls, z):
        if z.is_number and z.is_comparable:
            return z if z > 0 else sp.S.Zero
        return None

    def _eval_is_real(self):
        return self.args[0].is_real


class Softplus(sp.Function):
    """ln(1 + e^z), whose derivative is σ(z)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, z, **kwargs):
        return sp.log(1 + sp.exp(z))

    def _eval_evalf(self, prec):
        return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real


@dataclass(frozen=True)
class Activation:
    """One activation: f(z) and f'(z) written with the unit's own z and a = f(z).

    Writing f' in terms of a (σ' = a(1 − a), tanh' = 1 − a²) is how hand derivations read
    and lets the evaluator reuse the forward values.
    """

    name: str
    latex: str                                  # the function's printed name, e.g. \sigma
    f: Callable[[Expr], Expr]
    df: Callable[[Expr, Expr], Expr]            # f'(z) expressed in z and a
    df_latex: str                               # f'(z) in words of LaTeX, for the notation table
    elementwise: bool = True


def leaky_relu(slope: Rational) -> Activation:
    """The leaky ReLU with the given slope for z ≤ 0 (derivative `slope` at 0, as for ReLU)."""
    return Activation(
        "leaky_relu", r"\operatorname{LReLU}",
        lambda z: sp.Piecewise((z, z > 0), (slope * z, True)),
        lambda z, a: sp.Piecewise((1, z > 0), (slope, True)),
        rf"1 \text{{ if }} z>0 \text{{, else }} {sp.latex(slope)}",
    )


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", r"\operatorname{id}", lambda z: z, lambda z, a: sp.S.One, "1"),
        Activation("sigmoid", r"\sigma", Sigmoid, lambda z, a: a * (1 - a), r"\sigma(z)\,(1-\sigma(z))"),
        Activation("tanh", r"\tanh", sp.tanh, lambda z, a: 1 - a**2, r"1-\tanh^2(z)"),
        Activation("relu", r"\operatorname{ReLU}", ReLU, lambda z, a: sp.Heaviside(z, 0),
                   r"1 \text{ if } z>0 \text{, else } 0"),
        leaky_relu(Rational(1, 100)),
        Activation("softplus", r"\operatorname{softplus}", Softplus, lambda z, a: Sigmoid(z), r"\sigma(z)"),
        # softmax couples the units of a layer: f and df act on the whole layer (see network.py)
        Activation("softmax", r"\operatorname{softmax}", sp.exp, lambda z, a: a, r"a_i(\delta_{ij}-a_j)",
                   elementwise=False),
    )
}


def softmax(zs: Sequence[Expr]) -> list[Expr]:
    """a_i = e^{z_i} / Σ_j e^{z_j}."""
    total = sp.Add(*(sp.exp(z) for z in zs))
    return [sp.exp(z) / total for z in zs]


def softmax_jacobian(a_i: Expr, a_j: Expr, same: bool) -> Expr:
    """∂a_i/∂z_j = a_i (δ_ij − a_j)."""
    return a_i * (1 - a_j) if same else -a_i * a_j


@dataclass(frozen=True)
class Loss:
    """One loss: the contribution of one sample, given its outputs o and targets y.

    ``scale(N, J)`` is the constant in front of the double sum, ``term(o, y)`` the summand, so
    E = scale · Σₙ Σⱼ term(oₙⱼ, yₙⱼ) exactly as in DESIGN.md.
    """

    name: str
    scale: Callable[[Expr, Expr], Expr]         # exact for whole numbers; also takes a symbolic N
    term: Callable[[Expr, Expr], Expr]
    scale_latex: Callable[[int, int], str]      # the constant as printed in the general formula
    term_latex: str                             # the summand in y and o


LOSSES: dict[str, Loss] = {
    l.name: l
    for l in (
        Loss("half_sse", lambda n, j: Rational(1, 2), lambda o, y: (y - o) ** 2,
             lambda n, j: r"\frac{1}{2}", "(y_{nj} - o_{nj})^2"),
        Loss("sse", lambda n, j: sp.S.One, lambda o, y: (y - o) ** 2,
             lambda n, j: "", "(y_{nj} - o_{nj})^2"),
        Loss("mse", lambda n, j: sp.S.One / (n * j), lambda o, y: (y - o) ** 2,
             lambda n, j: r"\frac{1}{N J}", "(y_{nj} - o_{nj})^2"),
        Loss("quadratic", lambda n, j: sp.S.One / (2 * n), lambda o, y: (y - o) ** 2,
             lambda n, j: r"\frac{1}{2N}", "(y_{nj} - o_{nj})^2"),
        Loss("bce", lambda n, j: -sp.S.One / (n * j), lambda o, y: y * sp.log(o) + (1 - y) * sp.log(1 - o),
             lambda n, j: r"-\frac{1}{N J}", r"\left[y_{nj} \ln o_{nj} + (1 - y_{nj}) \ln(1 - o_{nj})\right]"),
        Loss("cross_entropy", lambda n, j: -sp.S.One / n, lambda o, y: y * sp.log(o),
             lambda n, j: r"-\frac{1}{N}", r"y_{nj} \ln o_{nj}"),
    )
}
