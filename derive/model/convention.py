"""The three ways a network's weight matrices are written: which index is the matrix's row, and where the samples go."""

from __future__ import annotations

from enum import StrEnum


class Convention(StrEnum):
    """[network].convention: how a layer's weight matrix is stored and how the matrix form uses it.

    ``column``: z = W·a + b, W is out×in (W[j][k]), one column per sample (the first seed, most textbooks).
    ``row``: Z = X·W + B, W is in×out (W[k][j]), one row per sample (the second seed, NumPy code).
    ``transposed``: z = Wᵀ·a + b, W is in×out as in ``row`` but the samples are columns as in ``column``
    (the third seed: W_ih is 4×5 and Z1 = W_ihᵀ·X + b_ih); every matrix is the column convention's, the
    weights and their gradients excepted, which are its transposes.
    """

    COLUMN = "column"
    ROW = "row"
    TRANSPOSED = "transposed"

    @property
    def rows(self) -> bool:
        """One row per sample (and a layer's vectors are rows); else one column per sample."""
        return self is Convention.ROW

    @property
    def stored_in_out(self) -> bool:
        """W^(l) is stored input × output: W[k][j] is the weight from unit k below to unit j."""
        return self is not Convention.COLUMN

    @property
    def uses_transpose(self) -> bool:
        """The column convention's formulas with W^(l)ᵀ in the place of W^(l)."""
        return self is Convention.TRANSPOSED
