"""derive exam --format qti21: a QTI 2.1 package (OpenOlat, ILIAS, Inspera, ONYX) as the IMS specification defines it.

The IMS XSD cannot be had here, so the structural checks are the specification's content models (IMS QTI 2.1
Assessment, Section and Item Information Model) for the elements derive writes, in their order. The grading
checks evaluate each item's responseProcessing the way a QTI 2.1 delivery engine does, for the right answer,
for each typical mistake and for a response far off."""

from __future__ import annotations

import functools
import io
import json
import re
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal

import pytest

from derive.exam import generate
from derive.exam.sheets import Options, documents
from derive.errors import SpecError
from derive.model.examples import example_text
from derive.model.spec import load, parse
from tests.test_exam import moodle_fields

QTI = "http://www.imsglobal.org/xsd/imsqti_v2p1"
CP = "http://www.imsglobal.org/xsd/imscp_v1p1"
MATHML = "http://www.w3.org/1998/Math/MathML"

# -- the information model's content, for the elements derive writes -----------------------------------------

_MODELS = {
    "assessmentTest": "outcomeDeclaration* timeLimits? testPart+ outcomeProcessing? testFeedback*",
    "testPart": "preCondition* branchRule* itemSessionControl? timeLimits? (assessmentSection | assessmentSectionRef)+ "
                "testFeedback*",
    "assessmentSection": "preCondition* branchRule* itemSessionControl? timeLimits? selection? ordering? rubricBlock* "
                         "(assessmentItemRef | assessmentSection | assessmentSectionRef)*",
    "assessmentItem": "responseDeclaration* outcomeDeclaration* templateDeclaration* templateProcessing? stylesheet* "
                      "itemBody? responseProcessing? modalFeedback*",
    "responseDeclaration": "defaultValue? correctResponse? mapping? areaMapping?",
    "outcomeDeclaration": "defaultValue? (matchTable | interpolationTable)?",
    "correctResponse": "value+",
    "defaultValue": "value+",
    "responseProcessing": "(responseCondition | setOutcomeValue | exitResponse | lookupOutcomeValue)*",
    "responseCondition": "responseIf responseElseIf* responseElse?",
    "responseIf": "EXPRESSION (responseCondition | setOutcomeValue | exitResponse | lookupOutcomeValue)*",
    "responseElseIf": "EXPRESSION (responseCondition | setOutcomeValue | exitResponse | lookupOutcomeValue)*",
    "setOutcomeValue": "EXPRESSION",
    "outcomeProcessing": "(outcomeCondition | setOutcomeValue | exitTest | lookupOutcomeValue)*",
    "sum": "EXPRESSION+",
    "or": "EXPRESSION+",
    "equal": "EXPRESSION EXPRESSION",
    "match": "EXPRESSION EXPRESSION",
    "stringMatch": "EXPRESSION EXPRESSION",
    "isNull": "EXPRESSION",
    "not": "EXPRESSION",
    "and": "EXPRESSION+",
    "product": "EXPRESSION+",
    "subtract": "EXPRESSION EXPRESSION",
    "choiceInteraction": "prompt? simpleChoice+",
}
_EXPRESSIONS = ("(variable | correct | baseValue | testVariables | isNull | equal | match | stringMatch | or | and | not "
                "| sum | product | subtract)")
_EMPTY = {"variable", "correct", "testVariables", "selection", "assessmentItemRef", "textEntryInteraction"}
_TEXT = {"value", "baseValue"}
_REQUIRED = {"assessmentTest": {"identifier", "title"}, "testPart": {"identifier", "navigationMode", "submissionMode"},
             "assessmentSection": {"identifier", "title", "visible"}, "assessmentItemRef": {"identifier", "href"},
             "selection": {"select"}, "assessmentItem": {"identifier", "title", "adaptive", "timeDependent"},
             "responseDeclaration": {"identifier", "cardinality"}, "outcomeDeclaration": {"identifier", "cardinality"},
             "variable": {"identifier"}, "correct": {"identifier"}, "baseValue": {"baseType"},
             "setOutcomeValue": {"identifier"}, "choiceInteraction": {"responseIdentifier"},
             "simpleChoice": {"identifier"}, "textEntryInteraction": {"responseIdentifier"},
             "modalFeedback": {"outcomeIdentifier", "identifier", "showHide"}, "stringMatch": {"caseSensitive"},
             "testVariables": {"variableIdentifier"}}
_CHOICES = {"cardinality": {"single", "multiple", "ordered", "record"},
            "baseType": {"identifier", "boolean", "integer", "float", "string", "point", "pair", "directedPair",
                         "duration", "file", "uri"},
            "navigationMode": {"linear", "nonlinear"}, "submissionMode": {"individual", "simultaneous"},
            "showHide": {"show", "hide"}, "toleranceMode": {"exact", "absolute", "relative"},
            "adaptive": {"true", "false"}, "timeDependent": {"true", "false"}, "visible": {"true", "false"}}
# itemBody's XHTML, as the information model's content module allows it
_BODY = {"div", "p", "span", "h2", "h3", "table", "thead", "tbody", "tr", "th", "td", "code", "strong", "em", "br",
         "ul", "ol", "li", "sub", "sup", "choiceInteraction", "simpleChoice", "textEntryInteraction", "prompt"}


@functools.cache
def _pattern(model: str) -> re.Pattern[str]:
    model = model.replace("EXPRESSION", _EXPRESSIONS)
    return re.compile(re.sub(r"[A-Za-z_]+", lambda m: f"(?:{m.group(0)},)", model).replace(" ", ""))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_CONTAINERS = {"itemBody", "modalFeedback", "simpleChoice", "prompt"}      # XHTML content inside


def structural_errors(element: ET.Element, path: str = "", body: bool = False) -> list[str]:
    """Every way the tree breaks the information model: required attributes, enumerations, content models,
    and in the item body (and feedback, choices) only the XHTML elements and interactions it allows."""
    name, where = _local(element.tag), f"{path}/{_local(element.tag)}"
    if element.tag.startswith(f"{{{MATHML}}}"):
        return []                                     # MathML, which the item body may hold
    errors = [f"{where}: missing @{a}" for a in _REQUIRED.get(name, set()) - set(element.attrib)]
    errors += [f"{where}: @{a}={v!r}" for a, allowed in _CHOICES.items()
               if (v := element.get(a)) is not None and v not in allowed]
    if not element.tag.startswith(f"{{{QTI}}}"):
        errors.append(f"{where}: not in the QTI 2.1 namespace")
    children = [_local(c.tag) for c in element if not c.tag.startswith(f"{{{MATHML}}}")]
    if body and name not in _BODY:
        errors.append(f"{where}: not an element an item body may hold")
    if name in _MODELS and not _pattern(_MODELS[name]).fullmatch("".join(f"{c}," for c in children)):
        errors.append(f"{where}: children {children} break ({_MODELS[name]})")
    if name in _EMPTY | _TEXT and children:
        errors.append(f"{where}: elements inside a text or empty element")
    if not body and name not in set(_MODELS) | _CONTAINERS | _EMPTY | _TEXT:
        errors.append(f"{where}: not an element derive should write")
    inner = name in _CONTAINERS or (body and name != "choiceInteraction")
    for child in element:
        errors += structural_errors(child, where, inner)
    return errors


# -- the package ---------------------------------------------------------------------------------------------------

@functools.cache
def exam_files(name: str = "sigmoid-222", variants: int = 3, seed: int = 3) -> dict:
    exam = generate(load(name), variants=variants, seed=seed, jobs=1)
    return documents(exam, Options(formats=("qti21",)), jobs=1)


def parts(files: dict) -> dict[str, ET.Element]:
    with zipfile.ZipFile(io.BytesIO(files["qti21.zip"])) as archive:
        return {n: ET.fromstring(archive.read(n)) for n in archive.namelist()}


def q(e: ET.Element, path: str) -> list[ET.Element]:
    return e.findall("/".join(f"{{{QTI}}}{p}" for p in path.split("/")))


# -- a QTI 2.1 delivery engine's response processing, for the expressions derive writes ---------------------------

def _evaluate(expr: ET.Element, env: dict, item: ET.Element):
    """An expression's value as QTI 2.1 defines it: None for NULL, which every operator but isNull passes on."""
    name, args = _local(expr.tag), list(expr)
    if name == "variable":
        return env.get(expr.get("identifier"))
    if name == "correct":
        (declared,) = [d for d in q(item, "responseDeclaration") if d.get("identifier") == expr.get("identifier")]
        return q(declared, "correctResponse/value")[0].text
    if name == "baseValue":
        return expr.text
    if name == "isNull":
        return _evaluate(args[0], env, item) is None
    values = [_evaluate(a, env, item) for a in args]
    if name in ("and", "or"):                   # false (true) wins over NULL, NULL over true (false)
        decisive = name == "or"
        return decisive if decisive in values else None if None in values else not decisive
    if None in values:
        return None
    if name == "not":
        return not values[0]
    return _OPERATORS[name](expr, *values)


def _equal(expr: ET.Element, a: str, b: str) -> bool:
    lower, upper = (Decimal(t) for t in expr.get("tolerance").split())      # absolute mode: b − t0 ≤ a ≤ b + t1
    return Decimal(b) - lower <= Decimal(a) <= Decimal(b) + upper


_OPERATORS = {
    "match": lambda e, a, b: a == b,
    "stringMatch": lambda e, a, b: a.lower() == b.lower() if e.get("caseSensitive") == "false" else a == b,
    "equal": _equal,
    "sum": lambda e, *v: str(sum(Decimal(x) for x in v)),
    "product": lambda e, *v: str(functools.reduce(lambda x, y: x * y, (Decimal(x) for x in v))),
    "subtract": lambda e, a, b: str(Decimal(a) - Decimal(b)),
}


def outcomes(item: ET.Element, responses: dict[str, str | None]) -> dict:
    """Every outcome after the item's responseProcessing for the given responses, from the declared defaults."""
    env: dict = dict(responses)
    for declared in q(item, "outcomeDeclaration"):
        default = q(declared, "defaultValue/value")
        env[declared.get("identifier")] = default[0].text if default else None
    for condition in q(item, "responseProcessing/responseCondition"):
        for branch in list(condition):
            expr, *actions = list(branch)
            if _local(branch.tag) == "responseElse" or _evaluate(expr, env, item) is True:
                for action in actions:
                    env[action.get("identifier")] = _evaluate(list(action)[0], env, item)
                break
    return env


def graded(item: ET.Element, response: str | None) -> tuple[float, str | None]:
    """SCORE and FEEDBACK of a one-question item after its responseProcessing for one response."""
    env = outcomes(item, {"RESPONSE": response})
    return float(env["SCORE"] or 0), env["FEEDBACK"]


# -- the tests -------------------------------------------------------------------------------------------------

def test_the_package_holds_the_test_and_every_item_its_manifest_names():
    files = exam_files()
    tree = parts(files)
    manifest = tree["imsmanifest.xml"]
    resources = manifest.findall(f"{{{CP}}}resources/{{{CP}}}resource")
    tests = [r for r in resources if r.get("type") == "imsqti_test_xmlv2p1"]
    items = [r for r in resources if r.get("type") == "imsqti_item_xmlv2p1"]
    assert len(tests) == 1 and len(items) == 3 * len(json.loads(files["answers.json"])[0]["questions"])
    hrefs = {f.get("href") for r in resources for f in r.findall(f"{{{CP}}}file")}
    assert hrefs == set(tree) - {"imsmanifest.xml"}
    depends = {d.get("identifierref") for d in tests[0].findall(f"{{{CP}}}dependency")}
    assert depends == {r.get("identifier") for r in items}
    exam_files.cache_clear()
    assert exam_files()["qti21.zip"] == files["qti21.zip"]


def test_every_file_follows_the_information_model():
    for name, root in parts(exam_files()).items():
        if name != "imsmanifest.xml":
            assert structural_errors(root) == [], name


def test_the_structural_check_finds_what_breaks_the_model():
    broken = ET.fromstring(f'<assessmentItem xmlns="{QTI}" identifier="i" title="t" adaptive="maybe">'
                           '<itemBody><section/></itemBody><responseDeclaration identifier="R" cardinality="single"/>'
                           '</assessmentItem>')
    errors = structural_errors(broken)
    assert any("missing @timeDependent" in e for e in errors) and any("@adaptive='maybe'" in e for e in errors)
    assert any("children ['itemBody', 'responseDeclaration']" in e for e in errors)
    assert any("section: not an element an item body may hold" in e for e in errors)


def test_each_section_selects_one_variant_and_the_score_is_their_sum():
    tree = parts(exam_files())
    (test,) = [root for name, root in tree.items() if name != "imsmanifest.xml" and _local(root.tag) == "assessmentTest"]
    sections = q(test, "testPart/assessmentSection")
    assert sections and all(q(s, "selection")[0].get("select") == "1" and len(q(s, "assessmentItemRef")) == 3
                            for s in sections)
    refs = {r.get("href") for s in sections for r in q(s, "assessmentItemRef")}
    assert refs == {n for n in tree if n.startswith("items/")}


def test_items_grade_the_answer_and_name_each_typical_mistake():
    """The right answer scores; each typical mistake's value (answers.json) scores 0 and sets the feedback that says
    the mistake; a response far off scores 0 with no feedback; no response scores 0."""
    files = exam_files()
    answers = json.loads(files["answers.json"])
    tree = parts(files)
    seen = set()
    for v, variant in enumerate(answers, 1):
        for i, question in enumerate(variant["questions"], 1):
            (item,) = [root for name, root in tree.items() if name.endswith(f"_v{v}_q{i}.xml")]
            kind = question["kind"]
            seen.add(kind)
            feedback = {f.get("identifier"): "".join(f.itertext()) for f in q(item, "modalFeedback")}
            if kind in ("choice", "formula"):
                right = q(item, "responseDeclaration/correctResponse/value")[0].text
                assert graded(item, right) == (1.0, None)
                wrong = [c.get("identifier") for c in item.iter(f"{{{QTI}}}simpleChoice") if c.get("identifier") != right]
                for c in wrong:
                    score, said = graded(item, c)
                    assert score == 0 and feedback[said].startswith("Not quite: ")
                assert sorted(feedback[graded(item, c)[1]][len("Not quite: "):-1] for c in wrong) == \
                    sorted(d["mistake"] for d in question["distractors"])
            elif kind == "shape":
                rows, cols = question["answer"].split("x")
                assert graded(item, f"{rows} x {cols}")[0] == 1 and graded(item, f"{rows}x1{cols}")[0] == 0
            else:
                assert graded(item, repr(question["answer"]))[0] == 1
                edge = Decimal(repr(question["answer"])) + Decimal(repr(question["tolerance"]))
                assert graded(item, str(edge))[0] == 1
                assert graded(item, str(edge + Decimal(repr(question["tolerance"])) / 10))[0] == 0
                for m in question.get("mistakes", []):
                    score, said = graded(item, repr(m["value"]))
                    assert score == 0 and feedback[said] == f"Not quite: {m['mistake']}."
                assert graded(item, "123456.789") == (0.0, None)
            assert graded(item, None) == (0.0, None)
    assert seen == {"forward", "loss", "gradient", "update", "formula", "shape", "choice"}


def test_the_item_body_is_xhtml_with_mathml_and_no_raw_latex():
    for name, root in parts(exam_files()).items():
        if not name.startswith("items/"):
            continue
        body = q(root, "itemBody")[0]
        assert body.iter(f"{{{MATHML}}}math") and "The network" in "".join(body.itertext())
        text = "".join(t for e in body.iter() if not e.tag.startswith(f"{{{MATHML}}}") for t in [e.text or "", e.tail or ""])
        assert "\\frac" not in text and "\\(" not in text and "$" not in text


@pytest.mark.parametrize("fmt", ["qti21"])
def test_the_cli_writes_the_package(tmp_path, fmt):
    from derive.cli import main

    out = tmp_path / "exam"
    assert main(["exam", "linear-221", "--variants", "2", "--out", str(out), "--format", fmt]) == 0
    assert zipfile.is_zipfile(out / "qti21.zip")


def test_partial_credit_scores_each_typical_mistake_in_qti21_and_moodle():
    """[exam] partial_credit = 25 with 2 points a question: every typical mistake (a numerical part's mistaken
    value, a wrong option) scores 0.5 and still says the mistake, in QTI 2.1's response processing as a delivery
    engine runs it and in Moodle's Cloze as its parser reads it; the right answer scores 2, nothing else scores."""
    raw = tomllib.loads(example_text("sigmoid-222"))
    raw["exam"] = {"partial_credit": 25, "points": 2}
    exam = generate(parse(raw, "partial.toml"), variants=2, seed=3, jobs=1)
    files = documents(exam, Options(formats=("qti21", "moodle")), jobs=1)
    answers = json.loads(files["answers.json"])
    tree = parts(files)
    checked = 0
    for v, variant in enumerate(answers, 1):
        for i, question in enumerate(variant["questions"], 1):
            assert question["partial_credit"] == 25
            (item,) = [root for name, root in tree.items() if name.endswith(f"_v{v}_q{i}.xml")]
            if question["kind"] in ("choice", "formula"):
                right = q(item, "responseDeclaration/correctResponse/value")[0].text
                assert graded(item, right) == (2.0, None)
                for c in item.iter(f"{{{QTI}}}simpleChoice"):
                    if c.get("identifier") != right:
                        score, said = graded(item, c.get("identifier"))
                        checked += 1
                        assert score == 0.5 and said is not None
            elif question["kind"] != "shape":
                assert graded(item, repr(question["answer"]))[0] == 2
                for m in question.get("mistakes", []):
                    checked += 1
                    assert graded(item, repr(m["value"]))[0] == 0.5
                assert graded(item, "123456.789") == (0.0, None)
    assert checked > 20
    root = ET.fromstring(files["moodle.xml"])
    for element in (e for e in root if e.get("type") == "cloze"):
        for kind, alternatives in moodle_fields(element.find("questiontext/text").text):
            for fraction, _, feedback in alternatives:
                assert fraction == "=" or kind == "SHORTANSWER" or (fraction == "%25%" and feedback.startswith("Not quite"))


@pytest.mark.parametrize("value", [-1, 100, 12.5, "half", True])
def test_a_bad_partial_credit_is_one_line(value):
    raw = tomllib.loads(example_text("sigmoid-222"))
    raw["exam"] = {"partial_credit": value}
    with pytest.raises(SpecError, match=r"\[exam\]\.partial_credit: expected a whole number from 0 to 99"):
        generate(parse(raw, "partial.toml"), variants=1, seed=3, jobs=1)
