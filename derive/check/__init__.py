"""`derive check`: read a student's claims, decide whether they hold, and name the mistake like a tutor."""

from derive.check.derivation import grade_derivation, grade_derivations, load_derivation
from derive.check.verdict import Grading, Verdict, check_claim, check_claims, explain, grade, load_claims

__all__ = ["Grading", "Verdict", "check_claim", "check_claims", "explain", "grade", "grade_derivation",
           "grade_derivations", "load_claims", "load_derivation"]
