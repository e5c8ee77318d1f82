"""derive: backpropagation derived by computer algebra and written up as worked solutions."""

__version__ = "0.1.0"

from .api import Solution, solve  # noqa: E402
from .errors import ClaimError, DeriveError, SpecError  # noqa: E402
from .spec import Spec, example_names, load, loads, parse  # noqa: E402

__all__ = ["Solution", "solve", "Spec", "load", "loads", "parse", "example_names",
           "DeriveError", "SpecError", "ClaimError"]
