"""What follows from the derivation and its numbers: the Solution, its JSON, the layer-wise formulas, the verification."""
