"""The version of derive, in one place (the package, the CLI and every document show it)."""

__version__ = "0.1.0"
