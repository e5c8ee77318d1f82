"""`derive check --derivation`: a whole derivation line by line, with error carried forward (Mazur's numbers)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from derive import solve
from derive.check.derivation import claim_lines, grade_derivation, load_derivation
from derive.cli import main

# Mazur's published values: h1 = 0.593269992, ∂E/∂o1 = 0.74136507, δ_o1 = 0.138498562, ∂E/∂w5 = 0.082167041,
# w5' = 0.35891648; a student's δ of 0.15 gives 0.15 · 0.593269992 = 0.0889905 ≈ 0.0890 and w5' = 0.4 − 0.5 · 0.0890
WRONG_DELTA = """# My derivation

- dE/do1 = 0.74136507
- delta_o1 = 0.1500
- dE/dw5 = delta_o1 * h1 = 0.0890
- w5' = 0.4 - 0.5*0.0890 = 0.35550
- dE/dw5 = 0.7414*0.1868*0.5933 = 0.0822
"""

ALIGN = r"""\begin{align*}
\frac{\partial E}{\partial o_1} &= o_1 - y_1 \\
  &= 0.74136507 \\
\delta_{o_1} &\approx 0.1385 \\
\frac{\partial E}{\partial w_5} &= \delta_{o_1} h_1 \\
  &= 0.1385 \cdot 0.5933 = 0.0822
\end{align*}
"""


@pytest.fixture(scope="module")
def mazur():
    return solve("sigmoid-222")


def graded(mazur, tmp_path, text: str, name: str = "d.md"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return {(r.line.number, r.line.text.split("=", 1)[1].strip()): r for r in grade_derivation(mazur, load_derivation(str(path)))}


def test_an_error_is_carried_forward_from_the_line_it_comes_from(mazur, tmp_path):
    rows = graded(mazur, tmp_path, WRONG_DELTA)
    delta = rows[(4, "0.1500")]
    assert not delta.verdict.holds and not delta.consistent
    gradient = rows[(5, "0.0890")]
    assert not gradient.verdict.holds and gradient.consistent and gradient.uses == (4,)
    update = rows[(6, "0.35550")]
    assert not update.verdict.holds and update.consistent and update.uses == (5,)
    # the step's formula written in the student's own δ is the true formula: it holds
    assert rows[(5, "delta_o1 * h1")].verdict.holds
    # Mazur's own line is right, but does not follow from this student's δ
    right = rows[(7, "0.0822")]
    assert right.verdict.holds and not right.consistent and right.uses == (4,)


def test_a_line_that_follows_only_from_a_zero_is_flagged(mazur, tmp_path):
    rows = graded(mazur, tmp_path, "delta_o1 = 0\ndE/dw5 = 0\n")
    line = rows[(2, "0")]
    assert line.consistent and line.uses == (1,)
    assert "line 1's value 0" in line.flag and "0.138499" in line.flag


def test_a_latex_align_block_with_continuation_lines(mazur, tmp_path):
    rows = graded(mazur, tmp_path, ALIGN, "d.tex")
    assert [(n, v.verdict.holds) for (n, _), v in rows.items()] == [(2, True), (3, True), (4, True), (5, True),
                                                                     (6, True), (6, True)]
    assert all(v.consistent for v in rows.values())


def test_lines_are_read_as_students_write_them():
    lines = claim_lines("Some prose.\n* o1 = 0.7514\n2. $h1 \\approx 0.5933$.\n```\n   = 0.59\n")
    assert [(l.number, l.text) for l in lines] == [(2, "o1 = 0.7514"), (3, "h1 = 0.5933"), (5, "h1 = 0.59")]


def test_the_json_gives_holds_consistent_and_uses_per_line(tmp_path, capsys):
    sheet = tmp_path / "student.toml"
    sheet.write_text(f'student = "Ada"\nderivation = """\n{WRONG_DELTA}"""\n', encoding="utf-8")
    assert main(["check", "sigmoid-222", "--derivation", str(sheet), "--format", "json"]) == 3
    report = json.loads(capsys.readouterr().out)
    (derivation,) = report["derivations"]
    # lines count from the derivation's first line (the TOML string's)
    assert derivation["student"] == "Ada" and derivation["first_wrong"] == 4
    by_line = {(line["line"], line["claim"]): line for line in derivation["lines"]}
    carried = by_line[(5, "dE/dw5 = 0.0890")]
    assert (carried["holds"], carried["consistent"], carried["uses"]) == (False, True, [4])
    assert report["summary"]["claims"] == len(derivation["lines"])


def test_every_line_holding_exits_0_and_a_bad_file_is_one_line(tmp_path, capsys):
    good = tmp_path / "good.tex"
    good.write_text(ALIGN, encoding="utf-8")
    assert main(["check", "sigmoid-222", "--derivation", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("derivation = 3\n", encoding="utf-8")
    assert main(["check", "sigmoid-222", "--derivation", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml: derivation: expected a string" in err and "Traceback" not in err


def test_an_unreadable_line_is_that_lines_verdict(mazur, tmp_path):
    rows = graded(mazur, tmp_path, "dE/dw5 = 0.0822\nfoo = 3 +\n")
    assert rows[(1, "0.0822")].verdict.holds
    unreadable = rows[(2, "3 +")]
    assert unreadable.verdict.mistake == "unreadable" and not unreadable.consistent


def test_a_hostile_line_cannot_forge_the_markdown_report(tmp_path, capsys):
    sheet = tmp_path / "hostile.md"
    sheet.write_text("dE/dw5 = 0.5 | holds | `\n", encoding="utf-8")
    main(["check", "sigmoid-222", "--derivation", str(sheet), "--format", "md"])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 1 ")]
    assert len(table) == 1 and "**does not hold**" in table[0]
    assert "\\|" in table[0] and "holds |" not in table[0].split("|", 3)[2]


def test_a_class_gets_its_most_common_mistakes_and_a_gradebook_csv(tmp_path, capsys):
    # two students, both claiming dE/dw5 = 2·0.0822 (a factor 2): the class's most common mistake, once per student
    sheets = []
    for who, extra in (("=HYPERLINK(\"x\")", "dE/dw1 = 0.000439"), ("Bo", "dE/dw1 = 0.5")):
        path = tmp_path / f"{len(sheets)}.toml"
        path.write_text(f"student = '{who}'\nclaims = [\"dE/dw5 = 0.1643\", \"{extra}\"]\n", encoding="utf-8")
        sheets.append(str(path))
    assert main(["check", "sigmoid-222", "--claims", *sheets, "--format", "json"]) == 3
    common = json.loads(capsys.readouterr().out)["summary"]["misconceptions"]
    assert common[0] == {"mistake": "factor", "quantity": "dE/dw5", "claims": 2, "students": 2}
    main(["check", "sigmoid-222", "--claims", *sheets])
    assert "2 students (2 claims): factor in dE/dw5" in capsys.readouterr().out
    main(["check", "sigmoid-222", "--claims", *sheets, "--format", "csv"])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["student", "source", "label", "claim", "holds", "mistake", "quantity"]
    assert rows[1][0] == "'=HYPERLINK(\"x\")"        # a spreadsheet shows it as text, never runs it
    assert [r[4] for r in rows[1:]] == ["false", "true", "false", "false"]


def test_a_derivations_csv_has_a_row_per_line(tmp_path, capsys):
    path = tmp_path / "d.md"
    path.write_text(WRONG_DELTA, encoding="utf-8")
    main(["check", "sigmoid-222", "--derivation", str(path), "--format", "csv"])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:7] == ["student", "source", "line", "claim", "holds", "consistent", "uses"]
    carried = next(r for r in rows if r[3] == "dE/dw5 = 0.0890")
    assert (carried[4], carried[5], carried[6]) == ("false", "true", "4")


@pytest.mark.parametrize("lines, words", [
    (["dE/dw5 = 0.0822"] * 100_000, "at most"),            # 10⁵ lines: the file is refused before a line is read
    (["o1 = 0.75"] * 2_500, "too many lines"),
])
def test_a_huge_derivation_is_refused_in_one_line(tmp_path, capsys, lines, words):
    path = tmp_path / "huge.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert main(["check", "sigmoid-222", "--derivation", str(path)]) == 1
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize("example, lines, expected", [
    # hmkcode's network with the student's Δ = −0.9: W2ᵀ·(−0.9) = (−0.126, −0.135) follows from it, f′ = 1
    ("linear-221", ["Delta2 = [[-0.9]]", "Delta1 = [[-0.126], [-0.135]]"], [(False, False, []), (False, True, [1])]),
    ("linear-221", ["delta_o = -0.9", "delta_h2 = -0.135", "delta_h1 = -0.11326"],
     [(False, False, []), (False, True, [1]), (True, False, [1])]),
    # Mazur's o1 written 0.75: δ_o1 = (0.75 − 0.01)·0.75·0.25 = 0.13875 and do1/dz_o1 = 0.75·0.25 = 0.1875
    ("sigmoid-222", ["o1 = 0.75", "delta_o1 = 0.1388", "do1/dz_o1 = 0.1875"],
     [(True, True, []), (False, True, [1]), (False, True, [1])]),
    # the second seed: Δ2 = (−0.2, 0.13) summed is −0.07, and b2' = 0.05 − 0.5·(−0.07) = 0.085
    ("sigmoid-rows-mse", ["Delta2 = [[-0.2], [0.13]]", "dE/db2 = -0.07", "b2' = 0.085"],
     [(False, False, []), (False, True, [1]), (False, True, [2])]),
])
def test_a_line_follows_from_earlier_values_through_the_ones_not_written(tmp_path, example, lines, expected):
    path = tmp_path / "work.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = grade_derivation(solve(example), load_derivation(str(path)))
    assert [(r.verdict.holds, r.consistent, list(r.uses)) for r in rows] == expected


def test_an_undefined_matrix_line_is_that_lines_verdict(tmp_path, capsys):
    path = tmp_path / "work.md"
    path.write_text("- Delta2 = [[1/(x1 - 2)]]\n- delta_o = -0.809\n", encoding="utf-8")     # x1 = 2 in this spec
    assert main(["check", "linear-221", "--derivation", str(path), "--keep-going"]) in (1, 3)
    assert "Traceback" not in capsys.readouterr().err
