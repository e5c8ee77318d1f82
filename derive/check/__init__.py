"""`derive check`: read a student's claims, decide whether they hold, and name the mistake like a tutor."""

from derive.check.derivation import grade_derivation, grade_derivations, load_derivation
from derive.check.grading import Grading, grade, load_claims
from derive.check.verdict import Verdict, check_claim, check_claims, explain

__all__ = ["Grading", "Verdict", "check_claim", "check_claims", "explain", "grade", "grade_derivation",
           "grade_derivations", "load_claims", "load_derivation"]
