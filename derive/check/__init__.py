"""`derive check`: read a student's claims, decide whether they hold, and name the mistake like a tutor."""

from derive.check.verdict import Grading, Verdict, check_claim, check_claims, explain, grade, load_claims

__all__ = ["Grading", "Verdict", "check_claim", "check_claims", "explain", "grade", "load_claims"]
