"""The exception hierarchy: every user error carries one line written for the user."""

from __future__ import annotations


class DeriveError(Exception):
    """Base of every error caused by the user's input; the CLI prints it as one line, exit 1."""


class SpecError(DeriveError):
    """Raised when a spec (TOML file, dict or keywords) is malformed or asks for the impossible.

    The message names the source, the field and what was expected, e.g.
    ``net.toml: [network].activation: expected one of linear, sigmoid, …; got 'sigmod'``.
    """

    def __init__(self, source: str, field: str, expected: str):
        self.source, self.field, self.expected = source, field, expected
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {expected}")


class InputError(DeriveError):
    """Raised when a file given to derive cannot be read as text; the message says why, without the path."""


class ClaimError(DeriveError):
    """Raised when a claim of `derive check` cannot be read (syntax, unknown name, too large)."""


class RenderError(DeriveError):
    """Raised when a document cannot be rendered: a broken user template, missing TeX."""


class ExamError(DeriveError):
    """Raised when exam variants cannot be generated, e.g. constraints that can never be met."""


class OutputError(DeriveError):
    """Raised when the files of a run cannot be written: a file where the output folder goes, a full disk."""
