"""The first mutations of ``python -m tests.fuzz``: each a solution or a one-line refusal, never a traceback."""

from __future__ import annotations

from tests.fuzz import mutations, run


def test_the_mutations_are_the_same_on_every_run():
    assert mutations(30) == mutations(30) and mutations(5, seed=1) != mutations(5)
    assert len({label for label, _ in mutations(30)}) > 20


def test_the_first_fuzzed_specs_end_in_a_solution_or_a_one_line_refusal():
    """30 mutations × JSON and Markdown, short and full; the tool runs thousands the same way."""
    lines: list[str] = []
    findings = [f for f in run(30, log=lines.append) if f.what != "slow"]     # speed: the tool's table, not a test
    assert len(lines) == 30
    assert findings == [], "\n".join(f"{f.case} {f.what}: {f.detail}" for f in findings)
