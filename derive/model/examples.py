"""The built-in example specs shipped inside the package: their names, TOML text and titles (no SymPy needed)."""

from __future__ import annotations

import tomllib
from importlib import resources


def example_names() -> list[str]:
    """The names of the built-in examples, sorted."""
    folder = resources.files("derive") / "examples"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def example_text(name: str) -> str:
    """The TOML text of the built-in example ``name``."""
    return (resources.files("derive") / "examples" / f"{name}.toml").read_text(encoding="utf-8")


def example_title(name: str) -> str:
    """The title line of a built-in example, as `derive examples` lists it."""
    return str(tomllib.loads(example_text(name)).get("title", name))
