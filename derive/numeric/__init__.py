"""The numbers: the exact first step, the float tape for later steps, and the one rounding of a number."""
