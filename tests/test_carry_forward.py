"""[exam] carry_forward = true: an update question earns its points where it follows from the student's own gradient.

The expected values come from each variant's own spec (answers.json), not from derive's formula: the parameter's
initial value p and the learning rate η as the spec writes them, so p′ = p − η·(g + λp) for the student's g. The QTI
2.1 items are graded by the delivery engine of tests/test_qti21.py, for students who answer the gradient right, with
a typical mistake, or not at all, and then update from their own answer as the sheet asks."""

from __future__ import annotations

import io
import json
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from decimal import ROUND_HALF_UP, Decimal

import pytest

from derive.errors import SpecError
from derive.exam import generate
from derive.exam.sheets import Options, documents
from derive.model.examples import example_text
from derive.model.spec import parse
from tests.test_qti21 import _local, outcomes, parts, q, structural_errors

VARIANTS = 4


def exam(train: dict | None = None, **table) -> dict:
    raw = tomllib.loads(example_text("sigmoid-222"))
    raw["train"].update(train or {})
    raw["exam"] = {"carry_forward": True} | table
    return documents(generate(parse(raw, "carried.toml"), variants=VARIANTS, seed=5, jobs=1),
                     Options(formats=("md", "tex", "html", "moodle", "qti12", "qti21")), jobs=1)


@pytest.fixture(scope="module")
def files() -> dict:
    return exam()


def initial(spec: dict, name: str) -> Decimal:
    """A weight's initial value in a sequential spec: w1, w2, … count the rows of W1, then of W2 (Mazur's order)."""
    weights = [w for layer in ("W1", "W2") for row in spec["init"][layer] for w in row]
    return Decimal(str(weights[int(name.removeprefix("w")) - 1]))


def pairs(files: dict):
    """Each variant's gradient question, the update that carries it forward, and the variant's spec."""
    for variant in json.loads(files["answers.json"]):
        questions = {x["id"]: x for x in variant["questions"]}
        (update,) = [x for x in variant["questions"] if "carried_forward" in x]
        yield variant["variant"], questions[update["carried_forward"]["from"]], update, variant["spec"]


def rounded(value: Decimal, display: str) -> str:
    """A value rounded half up to as many decimals as the answer shows, as a student writes it."""
    places = len(display.split(".")[1])
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def item(files: dict, variant: int) -> ET.Element:
    (root,) = [r for n, r in parts(files).items() if n.endswith(f"_v{variant}_q4_q5.xml")]
    return root


def test_the_update_asks_about_the_gradients_parameter_and_its_formula_is_the_specs(files):
    seen = 0
    for _, gradient, update, spec in pairs(files):
        p = update["quantity"].removesuffix("'")
        assert gradient["kind"] == "gradient" and gradient["quantity"] == f"dE/d{p}" and update["kind"] == "update"
        carried, eta = update["carried_forward"], Decimal(str(spec["train"]["learning_rate"]))
        assert Decimal(repr(carried["intercept"])) == initial(spec, p) and Decimal(repr(carried["rate"])) == eta
        # the right gradient carried forward gives the right update, within the update's tolerance
        g = Decimal(repr(gradient["answer"]))
        assert abs(initial(spec, p) - eta * g - Decimal(repr(update["answer"]))) <= Decimal(repr(update["tolerance"]))
        seen += 1
    assert seen == VARIANTS


def test_with_weight_decay_the_intercept_is_the_parameter_less_its_decay_step():
    for _, _, update, spec in pairs(exam({"weight_decay": 0.01})):
        p, eta = update["quantity"].removesuffix("'"), Decimal(str(spec["train"]["learning_rate"]))
        lam = Decimal(str(spec["train"]["weight_decay"]))
        assert Decimal(repr(update["carried_forward"]["intercept"])) == initial(spec, p) * (1 - eta * lam)


def test_the_qti21_item_holds_both_parts_and_follows_the_information_model(files):
    tree = parts(files)
    for name, root in tree.items():
        if name != "imsmanifest.xml":
            assert structural_errors(root) == [], name
    (test,) = [r for n, r in tree.items() if n != "imsmanifest.xml" and _local(r.tag) == "assessmentTest"]
    titles = [s.get("title") for s in q(test, "testPart/assessmentSection")]
    questions = len(json.loads(files["answers.json"])[0]["questions"])
    assert len(titles) == questions - 1 and "Questions 4 and 5" in titles
    for v in range(1, VARIANTS + 1):
        root = item(files, v)
        assert [d.get("identifier") for d in q(root, "responseDeclaration")] == ["RESPONSE_1", "RESPONSE_2"]
        (maximum,) = [d for d in q(root, "outcomeDeclaration") if d.get("identifier") == "MAXSCORE"]
        assert q(maximum, "defaultValue/value")[0].text == "2"


def test_a_student_who_updates_from_a_wrong_gradient_earns_the_update(files):
    """For every typical mistake in the gradient: the update worked from it scores, with the carried-forward
    feedback; stepping uphill from it does not; nor does it without a gradient answered."""
    checked = 0
    for v, gradient, update, spec in pairs(files):
        root = item(files, v)
        feedback = {(f.get("outcomeIdentifier"), f.get("identifier")): "".join(f.itertext())
                    for f in q(root, "modalFeedback")}
        p, eta = update["quantity"].removesuffix("'"), Decimal(str(spec["train"]["learning_rate"]))
        p0 = initial(spec, p)
        right = outcomes(root, {"RESPONSE_1": repr(gradient["answer"]), "RESPONSE_2": repr(update["answer"])})
        assert (Decimal(right["SCORE"]), right["FEEDBACK_1"], right["FEEDBACK_2"]) == (2, None, None)
        for m in gradient["mistakes"]:
            g = Decimal(repr(m["value"]))
            own = outcomes(root, {"RESPONSE_1": str(g), "RESPONSE_2": rounded(p0 - eta * g, update["display"])})
            assert Decimal(own["SCORE"]) == 1 and own["FEEDBACK_2"] == "CARRIED"
            assert feedback[("FEEDBACK_1", own["FEEDBACK_1"])] == f"(a) Not quite: {m['mistake']}."
            assert "carried forward" in feedback[("FEEDBACK_2", "CARRIED")]
            uphill = outcomes(root, {"RESPONSE_1": str(g), "RESPONSE_2": rounded(p0 + eta * g, update["display"])})
            # (the gradient's sign flipped and then stepped uphill is the right update: it scores as that)
            lucky = abs(p0 + eta * g - Decimal(repr(update["answer"]))) <= Decimal(repr(update["tolerance"]))
            assert Decimal(uphill["SCORE"]) == (1 if lucky else 0)
            alone = outcomes(root, {"RESPONSE_1": None, "RESPONSE_2": rounded(p0 - eta * g, update["display"])})
            assert Decimal(alone["SCORE"]) == 0 and alone["FEEDBACK_2"] != "CARRIED"
            checked += 1
    assert checked >= 2 * VARIANTS


def test_the_right_gradient_and_a_wrong_update_score_the_gradient_only(files):
    for v, gradient, update, _ in pairs(files):
        root = item(files, v)
        for m in update["mistakes"]:
            graded = outcomes(root, {"RESPONSE_1": repr(gradient["answer"]), "RESPONSE_2": repr(m["value"])})
            assert Decimal(graded["SCORE"]) == 1 and graded["FEEDBACK_2"] not in (None, "CARRIED")


def test_the_key_gives_the_formula_and_the_sheet_says_the_rule(files):
    for v, gradient, update, spec in pairs(files):
        p = update["quantity"].removesuffix("'")
        eta = Decimal(str(spec["train"]["learning_rate"]))
        formula = rf"{{w_{{{p[1:]}}}}}' = {initial(spec, p)} - {eta}\,g"
        number = gradient["id"].removeprefix("q")
        for fmt in ("md", "tex"):
            key, sheet = files[f"key-{v:02d}.{fmt}"], files[f"sheet-{v:02d}.{fmt}"]
            assert f"from the answer $g$ given to question {number}, ${formula}$" in key
            assert f"follows correctly from your answer to question {number} earns these points" in sheet
        assert "Error carried forward" in files[f"key-{v:02d}.html"]
    assert "error carried forward from question 4" in files["moodle.xml"]
    with zipfile.ZipFile(io.BytesIO(files["qti12.zip"])) as archive:
        canvas = "".join(archive.read(n).decode() for n in archive.namelist())
    assert canvas.count("Error carried forward from question 4") == VARIANTS


def test_without_carry_forward_nothing_is_carried():
    raw = tomllib.loads(example_text("sigmoid-222"))
    files = documents(generate(parse(raw, "plain.toml"), variants=2, seed=5, jobs=1),
                      Options(formats=("md", "qti21")), jobs=1)
    assert all("carried_forward" not in x for v in json.loads(files["answers.json"]) for x in v["questions"])
    assert "carried forward" not in files["key-01.md"] and not any("RESPONSE_2" in ET.tostring(r, "unicode")
                                                                   for r in parts(files).values())


@pytest.mark.parametrize("table, message", [
    ({"carry_forward": "yes"}, r"\[exam\]\.carry_forward: expected true or false; got 'yes'"),
    ({"carry_forward": True, "questions": ["update:W1", "gradient:W1"]},
     r"\[exam\]\.carry_forward: no update question follows a gradient question"),
])
def test_a_bad_carry_forward_is_one_line(table, message):
    raw = tomllib.loads(example_text("sigmoid-222"))
    raw["exam"] = table
    with pytest.raises(SpecError, match=message):
        generate(parse(raw, "carried.toml"), variants=1, seed=3, jobs=1)
