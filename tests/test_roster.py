"""derive exam --roster FILE.csv: a named sheet per student, the class list checked line by line."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess

import pytest

from derive.cli import main

CLASS = 'name,id,email\n"Lovelace, Ada",s001,a@example.org\nAlan & <b>Bo</b> $\\input{x}$ #1 _x_ ~,s-002,\n\nGrace Hopper,s.003,\n'
NAMES = ["Lovelace, Ada", "Alan & <b>Bo</b> $\\input{x}$ #1 _x_ ~", "Grace Hopper"]
IDS = ["s001", "s-002", "s.003"]


def exam(tmp_path, *extra, roster=CLASS, formats="md,tex,html"):
    path = tmp_path / "class.csv"
    path.write_text(roster, encoding="utf-8")
    out = tmp_path / "exam"
    code = main(["exam", "sigmoid-222", "--seed", "5", "--roster", str(path), "--out", str(out), "--format", formats,
                 *extra])
    return code, out


def without_name(text: str) -> str:
    """A sheet with its name line left out: a named sheet is the variant's sheet and the student's name."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(("Name:", "{\\large Variant", "<p>Name:")))


def test_each_student_gets_the_sheet_of_their_own_variant_with_their_name(tmp_path):
    code, out = exam(tmp_path)
    assert code == 0
    rows = list(csv.reader((out / "roster.csv").read_text(encoding="utf-8").splitlines()))
    assert rows == [["name", "id", "variant"]] + [[n, i, str(v)] for n, i, v in zip(NAMES, IDS, (1, 2, 3))]
    for k, ident in enumerate(IDS, 1):
        for fmt in ("md", "tex", "html"):
            named = (out / f"student-{ident}.{fmt}").read_text(encoding="utf-8")
            sheet = (out / f"sheet-0{k}.{fmt}").read_text(encoding="utf-8")
            assert without_name(named) == without_name(sheet) and named != sheet
    md = (out / "student-s-002.md").read_text(encoding="utf-8")
    assert r"Name: **Alan \& \<b\>Bo\</b\> \$\\input\{x\}\$ \#1 \_x\_ \~**" in md
    assert "<b>" not in (out / "student-s-002.html").read_text(encoding="utf-8")
    tex = (out / "student-s-002.tex").read_text(encoding="utf-8")
    assert r"\textbf{Alan \& \textless{}b\textgreater{}Bo" in tex and "\\input{x}" not in tex
    printed = (out / "sheets.tex").read_text(encoding="utf-8")      # every student, in the roster's order
    assert [printed.index(ident.replace("_", r"\_")) for ident in IDS] == sorted(printed.index(i) for i in IDS)
    assert printed.count(r"\clearpage") == len(IDS) - 1


def test_fewer_variants_than_students_go_round_robin(tmp_path):
    code, out = exam(tmp_path, "--variants", "2", formats="md")
    assert code == 0
    assert [r[2] for r in csv.reader((out / "roster.csv").read_text(encoding="utf-8").splitlines()[1:])] == ["1", "2", "1"]
    assert not (out / "sheet-03.md").exists()
    assert without_name((out / "student-s.003.md").read_text(encoding="utf-8")) == \
        without_name((out / "sheet-01.md").read_text(encoding="utf-8"))


def test_only_writes_the_variant_and_its_students(tmp_path):
    code, out = exam(tmp_path, "--variants", "2", "--only", "1", formats="md")
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["key-01.md", "sheet-01.md", "student-s.003.md", "student-s001.md", "variant-01.toml"]


def test_a_run_without_the_roster_removes_the_named_sheets(tmp_path):
    code, out = exam(tmp_path, formats="md")
    assert code == 0 and (out / "student-s001.md").exists()
    assert main(["exam", "sigmoid-222", "--variants", "2", "--out", str(out), "--format", "md"]) == 0
    assert not list(out.glob("student-*")) and not (out / "roster.csv").exists()


@pytest.mark.parametrize("roster, message", [
    ("", r"the file is empty; expected a header row with the columns name and id"),
    ("name,number\nAda,1\n", r"row 1: no column id; expected a header row with the columns name and id"),
    ("name,id\n", r"no students below the header row"),
    ("name,id\nAda,s1\n,s2\n", r"row 3, column name: empty; expected the student's name"),
    ("name,id\nAda,s1\nBo,s1\n", r"row 3, column id: 's1' is also the id of row 2; expected every student's id once"),
    ("name,id\nAda,../x\n", r"row 2, column id: '../x'; expected letters, digits, '.', '_' or '-'"),
])
def test_a_broken_class_list_is_one_line_naming_the_row_and_writes_nothing(tmp_path, capsys, roster, message):
    code, out = exam(tmp_path, roster=roster, formats="md")
    err = capsys.readouterr().err
    assert code == 1 and re.search(re.escape("class.csv: ") + message, err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_class_list_that_is_not_utf8_says_where(tmp_path, capsys):
    path = tmp_path / "class.csv"
    path.write_bytes("name,id\nJos\xe9,s1\n".encode("latin-1"))
    assert main(["exam", "sigmoid-222", "--roster", str(path), "--out", str(tmp_path / "x")]) == 1
    assert "is not UTF-8 text: byte 0xe9 at line 2" in capsys.readouterr().err


def test_a_spreadsheets_byte_order_mark_is_no_part_of_the_header(tmp_path):
    code, out = exam(tmp_path, roster="\ufeffName,ID\nAda,s1\n", formats="md")
    assert code == 0 and (out / "student-s1.md").exists()


@pytest.mark.slow
def test_a_named_sheet_with_every_special_character_compiles(tmp_path):
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing in CI (install texlive-latex-extra)")
        pytest.skip("pdflatex is not installed")
    code, out = exam(tmp_path, formats="tex")
    assert code == 0
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "student-s-002.tex"], cwd=out,
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-2000:]


# -- [exam].points: what each question is worth, on paper and in every LMS -------------------------------------

POINTED = """
[exam]
questions = ["loss", "gradient:W2", "choice:W1", "shape"]
points = [1, 3, 2, 1]
"""


def test_points_reach_the_sheets_moodle_and_both_qti_packages(tmp_path):
    import io
    import json
    import xml.etree.ElementTree as ET
    import zipfile

    from derive.model.examples import example_text

    spec = tmp_path / "t.toml"
    spec.write_text(example_text("sigmoid-222") + POINTED, encoding="utf-8")
    out = tmp_path / "exam"
    assert main(["exam", str(spec), "--variants", "2", "--out", str(out), "--format", "md,tex,html,moodle,qti12,qti21"]) == 0
    answers = json.loads((out / "answers.json").read_text(encoding="utf-8"))
    assert [q["points"] for q in answers[0]["questions"]] == [1, 3, 2, 1]
    md = (out / "sheet-01.md").read_text(encoding="utf-8")
    assert "7 points in all." in md and md.count("(3 points)") == 1 and md.count("(1 point)") == 2
    assert "7 points in all." in (out / "sheet-01.tex").read_text(encoding="utf-8")
    assert "(2 points)" in (out / "sheet-01.html").read_text(encoding="utf-8")
    cloze = ET.parse(out / "moodle.xml").getroot().findall("question")[1].find("questiontext/text").text
    assert re.findall(r"\{(\d+):(NUMERICAL|MULTICHOICE_V|SHORTANSWER):", cloze) == \
        [("1", "NUMERICAL"), ("3", "NUMERICAL"), ("2", "MULTICHOICE_V"), ("1", "SHORTANSWER")]
    with zipfile.ZipFile(out / "qti12.zip") as archive:
        xml = next(archive.read(n) for n in archive.namelist() if n.count("/") == 1 and "meta" not in n)
    per_item = [e.text for e in ET.fromstring(xml).iter() if e.tag.endswith("points_per_item")]
    assert per_item == ["1", "3", "2", "1"]
    with zipfile.ZipFile(out / "qti21.zip") as archive:
        item = ET.fromstring(archive.read(next(n for n in archive.namelist() if n.endswith("_v1_q2.xml"))))
    ns = "{http://www.imsglobal.org/xsd/imsqti_v2p1}"
    maxscore = [d for d in item.iter(f"{ns}outcomeDeclaration") if d.get("identifier") == "MAXSCORE"][0]
    assert "".join(maxscore.itertext()) == "3"


@pytest.mark.parametrize("table, message", [
    ("points = [1, 2]", r"\[exam\].points: a list of points needs \[exam\].questions"),
    ('questions = ["loss", "shape"]\npoints = [1]', r"one number per question \(2\); got 1"),
    ('questions = ["loss", "shape"]\npoints = [1, 0.5]', r"expected whole numbers from 1 to 100; got 0.5"),
    ("points = 0", r"\[exam\].points: expected a whole number from 1 to 100; got 0"),
])
def test_bad_points_are_one_line(tmp_path, capsys, table, message):
    from derive.model.examples import example_text

    spec = tmp_path / "t.toml"
    spec.write_text(example_text("sigmoid-222") + "\n[exam]\n" + table + "\n", encoding="utf-8")
    assert main(["exam", str(spec), "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1, err
