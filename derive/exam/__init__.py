"""`derive exam`: randomized, verified exam variants with their sheets, keys and LMS files."""

from derive.exam.generate import Exam, generate
from derive.exam.sheets import Options, documents, write

__all__ = ["Exam", "generate", "Options", "documents", "write"]
