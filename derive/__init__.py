"""derive: backpropagation derived by computer algebra and written up as worked solutions."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from derive.errors import ClaimError, DeriveError, SpecError
from derive.version import __version__

# The public names and the module each comes from. They load on first use (PEP 562), so that
# `import derive` and `derive --help` stay free of SymPy until a spec is actually solved.
_PUBLIC = {"Solution": "derive.derived.solution", "solve": "derive.derived.solution",
           "Spec": "derive.model.spec", "load": "derive.model.spec", "loads": "derive.model.spec",
           "parse": "derive.model.spec", "example_names": "derive.model.examples",
           "Rounding": "derive.numeric.rounding"}

__all__ = ["__version__", "Solution", "solve", "Spec", "load", "loads", "parse", "example_names", "Rounding",
           "DeriveError", "SpecError", "ClaimError"]

if TYPE_CHECKING:
    from derive.derived.solution import Solution, solve
    from derive.model.examples import example_names
    from derive.model.spec import Spec, load, loads, parse
    from derive.numeric.rounding import Rounding


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'derive' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in ("solve", "Solution"):       # a Solution shows itself in Jupyter: the documents draw it
        importlib.import_module("derive.text.notebook")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
