"""Shared test settings: Hypothesis without per-example deadlines (a first SymPy import or a busy
CI core is not a failure), and the same examples on every CI run so a red build can be replayed."""

import os

from hypothesis import settings

settings.register_profile("derive", deadline=None, print_blob=True)
settings.register_profile("ci", parent=settings.get_profile("derive"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "derive")
