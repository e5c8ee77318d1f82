"""The one plain-text printer: formulas in the claim syntax users type back (`derive check`, answers, JSON)."""

from __future__ import annotations

from typing import Mapping

import sympy as sp
from sympy import Basic, Expr
from sympy.printing.str import StrPrinter

from derive.model.registry import function_entry, piecewise_entry, piecewise_name


class PlainPrinter(StrPrinter):
    """Formulas in the claim syntax of `derive check`, so an expected answer can be pasted back.

    ``names`` maps symbols to their plain text (or to numbers); others print by their own name.

    >>> from derive.model.registry import Sigmoid
    >>> z, o, y = sp.symbols("z_h1 o y")
    >>> PlainPrinter().doprint(Sigmoid(z) * (o - y))
    '(o - y)*sigmoid(z_h1)'
    """

    def __init__(self, names: Mapping[Basic, str] | None = None):
        super().__init__()
        self.names = dict(names or {})

    def _print_Symbol(self, e):
        return self.names.get(e, e.name)

    def _print_Function(self, e):
        entry = function_entry(type(e))
        if entry is not None:                   # sigmoid(z), relu(z), softplus(z): the activation's name
            return f"{entry.name}({', '.join(self._print(a) for a in e.args)})"
        return super()._print_Function(e)

    def _print_Heaviside(self, e):
        return f"relu'({self._print(e.args[0])})"          # ReLU's derivative, 0 at 0 like Heaviside(z, 0)

    def _print_Piecewise(self, e):
        # the leaky ReLU (z if z > 0, else c·z) and its derivative (1 if z > 0, else c), c the spec's slope
        u = self._positive_part(e)
        found = piecewise_entry(e, u) if u is not None else None
        if found is not None:                   # elu(z), elu'(z): a registry entry defined in pieces
            entry, prime = found
            return f"{entry.name}{chr(39) if prime else ''}({self._print(u)})"
        if u is not None:
            (first, _), (second, _) = e.args
            c = sp.cancel(second / u) if u != 0 else None
            if c is not None and c.is_number and sp.expand(first - u) == 0:
                return f"{piecewise_name(c)}({self._print(first)})"
            if first == 1 and second.is_number:
                return f"{piecewise_name(second)}'({self._print(u)})"
        return self._print_Function(e)

    @staticmethod
    def _positive_part(e: sp.Piecewise) -> Expr | None:
        """u for Piecewise((…, u > 0), (…, True)), however SymPy wrote u > 0 (w·x > −1, z < 0); else None."""
        if len(e.args) != 2 or e.args[1].cond is not sp.true:
            return None
        cond = e.args[0].cond
        if isinstance(cond, sp.StrictGreaterThan):
            return sp.expand(cond.lhs - cond.rhs)
        if isinstance(cond, sp.StrictLessThan):
            return sp.expand(cond.rhs - cond.lhs)
        return None

    def _print_SampleSum(self, e):
        return f"sum({self._print(e.args[0])})"            # derive.claims.SampleSum: a sum over the samples

    def _print_Exp1(self, e):
        return "exp(1)"                                     # the claim syntax has exp, not the constant E

    def _print_Pow(self, e, rational=False):
        # (o - y)**2, not (-o + y)**2: an even power of a negated base is the same power
        base, exp = e.args
        if exp.is_Integer and exp % 2 == 0 and base.could_extract_minus_sign():
            e = sp.Pow(-base, exp, evaluate=False)
        return super()._print_Pow(e, rational)


def plain(expr: Basic, names: Mapping[Basic, str] | None = None) -> str:
    """``expr`` as plain text in the claim syntax of `derive check`: ``sigmoid(z_h1)``, ``(o - y)*h1``."""
    return PlainPrinter(names).doprint(expr)
