"""derive exam --format blackboard: Blackboard's upload files, read the way Blackboard documents them.

Blackboard's "Upload Questions" reads a tab-delimited text file: one question a row, no header, no blank line, the
type first; NUM (question, answer, tolerance), MC (question, then answer and correct|incorrect pairs, at most 100)
and FIB (question, then the accepted answers, at most 100). Ultra keeps only BbML's HTML elements in a question's
text. The checks read every row by that grammar, then compare it with the variant's own spec and its answer key."""

from __future__ import annotations

import functools
import io
import json
import tomllib
import zipfile
from html.parser import HTMLParser

import pytest

from derive.exam import generate
from derive.exam.sheets import Options, documents
from derive.model.examples import example_text
from derive.model.spec import load, parse

BBML = {"a", "br", "del", "div", "em", "h4", "h5", "h6", "img", "li", "ol", "p", "span", "strong", "sub", "sup", "ul"}
VARIANTS = 3


@functools.cache
def exam_files(name: str = "sigmoid-222") -> dict:
    exam = generate(load(name), variants=VARIANTS, seed=7, jobs=1)
    return documents(exam, Options(formats=("blackboard",)), jobs=1)


def uploads(files: dict) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(files["blackboard.zip"])) as archive:
        return {n: archive.read(n).decode("utf-8") for n in archive.namelist()}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.text.append(data)


def read_row(line: str) -> tuple[str, str, list[str]]:
    """One row by Blackboard's grammar: its type, its question text, and the fields after it."""
    kind, text, *rest = line.split("\t")
    assert text.strip() and all(f == f.strip() and f for f in rest), line[:80]
    if kind == "NUM":
        assert len(rest) == 2 and float(rest[1]) >= 0
        float(rest[0])
    elif kind == "MC":
        assert 2 <= len(rest) // 2 <= 100 and len(rest) % 2 == 0
        assert all(mark in ("correct", "incorrect") for mark in rest[1::2]) and rest[1::2].count("correct") == 1
    elif kind == "FIB":
        assert 1 <= len(rest) <= 100
    else:
        raise AssertionError(f"not a type this file should hold: {kind}")
    return kind, text, rest


def rows(text: str) -> list[str]:
    assert text.endswith("\n") and "\r" not in text
    lines = text[:-1].split("\n")
    assert all(lines), "a blank line is an error for Blackboard"
    return lines


@pytest.mark.parametrize("name", ["sigmoid-222", "softmax-233", "sigmoid-451-batch"])
def test_every_row_reads_as_blackboard_reads_it_and_gives_the_keys_answer(name):
    files = exam_files(name)
    answers = json.loads(files["answers.json"])
    texts = uploads(files)
    count = len(answers[0]["questions"])
    assert sorted(texts) == ["how-to-upload.txt"] + [f"question-{i:02d}.txt" for i in range(1, count + 1)]
    for i in range(count):
        for v, line in enumerate(rows(texts[f"question-{i + 1:02d}.txt"])):
            kind, text, rest = read_row(line)
            question = answers[v]["questions"][i]
            if question["kind"] in ("choice", "formula"):
                assert kind == "MC"
                right = rest[rest[1::2].index("correct") * 2]
                wrong = sorted(rest[0::2][k] for k, mark in enumerate(rest[1::2]) if mark == "incorrect")
                expected = sorted(d["display"] if "display" in d else d["formula"] for d in question["distractors"])
                assert wrong == expected and right == question["display"]
            elif question["kind"] == "shape":
                assert kind == "FIB" and question["answer"] in rest
                assert not any(a.replace(" ", "") in ("3x12", "12x3") for a in rest)
            else:
                assert kind == "NUM" and rest == [question["display"], f"{question['tolerance']:f}".rstrip("0")]


@pytest.mark.parametrize("name", ["sigmoid-222", "softmax-233", "sigmoid-451-batch"])
def test_the_text_is_html_that_ultra_keeps_with_no_math_markup(name):
    for file, text in uploads(exam_files(name)).items():
        if not file.startswith("question-"):
            continue
        for line in rows(text):
            parser = _Tags()
            parser.feed(read_row(line)[1])
            assert parser.tags <= BBML, parser.tags - BBML
            shown = "".join(parser.text)
            assert "\\" not in shown and "$" not in shown and "{" not in shown, shown[:200]


def test_each_row_carries_its_own_variants_numbers():
    """The data and the initial weights of each variant's spec (answers.json) are in that variant's rows, named
    as the spec's sequential style names them (w1, w2, … along the rows of W1, then W2)."""
    files = exam_files()
    texts = uploads(files)
    for v, variant in enumerate(json.loads(files["answers.json"])):
        spec = variant["spec"]
        weights = [w for layer in ("W1", "W2") for row in spec["init"][layer] for w in row]
        shown = [f"w{k} = {w}" for k, w in enumerate(weights, 1)]
        shown += [f"x{k} = {x}" for k, x in enumerate(spec["data"]["x"][0], 1)]
        for file, text in texts.items():
            if file.startswith("question-"):
                line = rows(text)[v]
                assert all(s in line for s in shown), (file, [s for s in shown if s not in line])


def test_user_text_is_escaped_and_cannot_break_a_row():
    raw = tomllib.loads(example_text("sigmoid-222"))
    raw["exam"] = {"intro": "Use <script>alert(1)</script>\ta calculator\nand & care."}
    exam = generate(parse(raw, "hostile.toml"), variants=2, seed=3, jobs=1)
    texts = uploads(documents(exam, Options(formats=("blackboard",)), jobs=1))
    for file, text in texts.items():
        if file.startswith("question-"):
            for line in rows(text):
                kind, body, _ = read_row(line)
                assert "<script>" not in body and "&lt;script&gt;" in body and "&amp; care" in body


def test_the_same_exam_gives_the_same_bytes_and_the_cli_writes_it(tmp_path):
    from derive.cli import main

    first = exam_files()["blackboard.zip"]
    exam_files.cache_clear()
    assert exam_files()["blackboard.zip"] == first
    out = tmp_path / "exam"
    assert main(["exam", "linear-221", "--variants", "2", "--out", str(out), "--format", "blackboard"]) == 0
    assert zipfile.is_zipfile(out / "blackboard.zip")
