"""derive exam --format qti12: a QTI 1.2 package as the IMS content models allow it and as Canvas's importer reads it.

The IMS XSD cannot be had here, so the structural checks below are the content models of the QTI 1.2 ASI DTD
(ims_qtiasiv1p2.dtd, the version with the extension elements Canvas uses), element by element. The Canvas
checks read the package the way canvas-lms's QTI converters do (gems/plugins/qti_exporter: numeric_interaction.rb,
choice_interaction.rb, extended_text_interaction.rb, via Instructure's QTIMigrationTool)."""

from __future__ import annotations

import functools
import html.parser
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal

import pytest

from derive.cli import main
from derive.exam import generate
from derive.exam.qti import IDENT
from derive.exam.sheets import Options, documents
from derive.model.examples import example_text
from derive.model.spec import load

# -- the content models of the QTI 1.2 ASI DTD, for the elements a package may hold ----------------------------

_MODELS = {
    "questestinterop": "qticomment? (objectbank | assessment | (section | item)+)",
    "assessment": "qticomment? duration? qtimetadata* objectives* assessmentcontrol* rubric* presentation_material? "
                  "outcomes_processing* assessproc_extension? assessfeedback* selection_ordering? reference? "
                  "(sectionref | section)+",
    "section": "qticomment? duration? qtimetadata* objectives* sectioncontrol* sectionprecondition* "
               "sectionpostcondition* rubric* presentation_material? outcomes_processing* sectionproc_extension? "
               "sectionfeedback* selection_ordering? reference? (itemref | item | sectionref | section)*",
    "selection_ordering": "qticomment? sequence_parameter* selection* order?",
    "selection": "sourcebank_ref? selection_number? selection_metadata? "
                 "(and_selection | or_selection | not_selection | selection_extension)?",
    "item": "qticomment? duration? itemmetadata? objectives* itemcontrol* itemprecondition* itempostcondition* "
            "(itemrubric | rubric)* presentation? resprocessing* itemproc_extension? itemfeedback* reference?",
    "itemmetadata": "qtimetadata*",
    "qtimetadata": "vocabulary? qtimetadatafield+",
    "qtimetadatafield": "fieldlabel fieldentry",
    "presentation": "qticomment? (flow | (material | response_lid | response_xy | response_str | response_num | "
                    "response_grp | response_extension)+)",
    "response_lid": "(material | material_ref)? (render_choice | render_hotspot | render_slider | render_fib | "
                    "render_extension) (material | material_ref)?",
    "response_str": "(material | material_ref)? (render_choice | render_hotspot | render_slider | render_fib | "
                    "render_extension) (material | material_ref)?",
    "render_choice": "(material | material_ref | response_label | flow_label)* response_na?",
    "render_fib": "(material | material_ref | response_label | flow_label)* response_na?",
    "response_label": "(qticomment | material | material_ref | flow_mat)*",
    "material": "qticomment? (mattext | matemtext | matimage | mataudio | matvideo | matapplet | matapplication | "
                "matref | matbreak | mat_extension)+ altmaterial*",
    "resprocessing": "qticomment? outcomes (respcondition | itemproc_extension)+",
    "outcomes": "qticomment? (decvar interpretvar*)+",
    "respcondition": "qticomment? conditionvar setvar* displayfeedback* respcond_extension?",
    "conditionvar": "(not | and | or | unanswered | other | varequal | varlt | varlte | vargt | vargte | varsubset | "
                    "varinside | varsubstring | durequal | durlt | durlte | durgt | durgte | var_extension)+",
    "and": "(not | and | or | unanswered | other | varequal | varlt | varlte | vargt | vargte | varsubset | "
           "varinside | varsubstring | durequal | durlt | durlte | durgt | durgte)+",
    "or": "(not | and | or | unanswered | other | varequal | varlt | varlte | vargt | vargte | varsubset | "
          "varinside | varsubstring | durequal | durlt | durlte | durgt | durgte)+",
    "itemfeedback": "((flow_mat | material) | solution | hint)+",
    "flow_mat": "qticomment? (flow_mat | material | material_ref)+",
}
_TEXT = {"mattext", "fieldlabel", "fieldentry", "selection_number", "varequal", "vargte", "varlte", "setvar"}
_EMPTY = {"other", "decvar", "displayfeedback"}
_ANY = {"selection_extension"}                      # the DTD's ANY: Canvas's points_per_item lives here
_REQUIRED = {"assessment": {"ident"}, "section": {"ident"}, "item": {"ident"}, "response_lid": {"ident"},
             "response_str": {"ident"}, "response_label": {"ident"}, "itemfeedback": {"ident"},
             "displayfeedback": {"linkrefid"}, "varequal": {"respident"}, "vargte": {"respident"},
             "varlte": {"respident"}, "decvar": set(), "setvar": set()}
_CHOICES = {("response_lid", "rcardinality"): {"Single", "Multiple", "Ordered"},
            ("response_str", "rcardinality"): {"Single", "Multiple", "Ordered"},
            ("render_fib", "fibtype"): {"String", "Integer", "Decimal", "Scientific"},
            ("respcondition", "continue"): {"Yes", "No"},
            ("setvar", "action"): {"Set", "Add", "Subtract", "Multiply", "Divide"},
            ("decvar", "vartype"): {"Integer", "String", "Decimal", "Scientific", "Boolean", "Enumerated", "Set"},
            ("displayfeedback", "feedbacktype"): {"Response", "Solution", "Hint"}}


@functools.cache
def _pattern(model: str) -> re.Pattern[str]:
    """A content model as a regular expression over the children's names, each followed by a comma."""
    return re.compile(re.sub(r"[a-z_]+", lambda m: f"(?:{m.group(0)},)", model).replace(" ", ""))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def structural_errors(element: ET.Element, path: str = "") -> list[str]:
    """Every way the tree breaks the DTD's content models, required attributes and enumerations."""
    name, errors = _local(element.tag), []
    where = f"{path}/{name}"
    children = [_local(c.tag) for c in element]
    if name in _ANY:
        return []
    if name in _MODELS:
        if not _pattern(_MODELS[name]).fullmatch("".join(f"{c}," for c in children)):
            errors.append(f"{where}: children {children} break ({_MODELS[name]})")
        if (element.text or "").strip():
            errors.append(f"{where}: text where the DTD has only elements")
    elif name in _TEXT | _EMPTY:
        if children:
            errors.append(f"{where}: elements inside a text or empty element")
        if name in _EMPTY and (element.text or "").strip():
            errors.append(f"{where}: text inside an empty element")
    else:
        errors.append(f"{where}: not an element of QTI 1.2")
    errors += [f"{where}: missing @{a}" for a in _REQUIRED.get(name, set()) - set(element.attrib)]
    errors += [f"{where}: @{a}={v!r}" for (e, a), allowed in _CHOICES.items()
               if e == name and (v := element.get(a)) is not None and v not in allowed]
    for child in element:
        errors += structural_errors(child, where)
    return errors


# -- an exam, its package and its answers ---------------------------------------------------------------------

@functools.cache
def exam_files(name: str = "sigmoid-222", variants: int = 4, seed: int = 3) -> dict:
    exam = generate(load(name), variants=variants, seed=seed, jobs=1)
    return documents(exam, Options(formats=("qti12",)), jobs=1)


def package(files: dict) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(files["qti12.zip"])) as archive:
        return {n: archive.read(n).decode("utf-8") for n in archive.namelist()}


def assessment(files: dict) -> ET.Element:
    parts = package(files)
    (name,) = [n for n in parts if n.count("/") == 1 and not n.endswith("assessment_meta.xml")]
    return ET.fromstring(parts[name])


def q(element: ET.Element, path: str) -> list[ET.Element]:
    """findall with the QTI namespace left out of the path."""
    return element.findall("/".join(f"{{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}}{p}" if p not in (".", "..")
                                    else p for p in path.split("/")))


def field(item: ET.Element, label: str) -> str:
    for f in q(item, "itemmetadata/qtimetadata/qtimetadatafield"):
        if q(f, "fieldlabel")[0].text == label:
            return q(f, "fieldentry")[0].text or ""
    raise KeyError(label)


# -- the tests -------------------------------------------------------------------------------------------------

def test_the_package_is_what_canvas_unpacks_and_the_same_bytes_every_time():
    files = exam_files()
    parts = package(files)
    root = assessment(files)
    ident = q(root, "assessment")[0].get("ident")
    assert sorted(parts) == sorted(["imsmanifest.xml", f"{ident}/{ident}.xml", f"{ident}/assessment_meta.xml"])
    manifest = ET.fromstring(parts["imsmanifest.xml"])
    hrefs = {f.get("href") for f in manifest.iter("{http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1}file")}
    assert hrefs == {f"{ident}/{ident}.xml", f"{ident}/assessment_meta.xml"}
    types = {r.get("type") for r in manifest.iter("{http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1}resource")}
    assert types == {"imsqti_xmlv1p2", "associatedcontent/imscc_xmlv1p1/learning-application-resource"}
    meta = ET.fromstring(parts[f"{ident}/assessment_meta.xml"])
    assert meta.get("identifier") == ident        # Canvas applies the settings from the folder named as the ident
    exam_files.cache_clear()
    assert exam_files()["qti12.zip"] == files["qti12.zip"]


def test_the_assessment_follows_the_qti_1_2_content_models():
    assert structural_errors(assessment(exam_files())) == []


def test_the_structural_check_finds_what_breaks_the_dtd():
    broken = ET.fromstring('<questestinterop><assessment title="t"><section ident="s"><item ident="i">'
                           '<resprocessing><respcondition continue="Maybe"><setvar>1</setvar></respcondition>'
                           '</resprocessing><presentation/></item></section></assessment></questestinterop>')
    errors = structural_errors(broken)
    assert any("assessment: missing @ident" in e for e in errors)
    assert any("/item: children ['resprocessing', 'presentation']" in e for e in errors)     # order matters
    assert any("respcondition: children ['setvar']" in e for e in errors)                    # no conditionvar
    assert any("@continue='Maybe'" in e for e in errors)


def test_each_question_is_a_group_that_draws_one_variant_and_every_ident_survives_the_importer():
    files = exam_files()
    answers = json.loads(files["answers.json"])
    groups = q(assessment(files), "assessment/section/section")
    assert len(groups) == len(answers[0]["questions"])
    idents = []
    for i, group in enumerate(groups):
        assert q(group, "selection_ordering/selection/selection_number")[0].text == "1"
        items = q(group, "item")
        assert len(items) == len(answers)                   # one per variant
        kinds = {answers[v]["questions"][i]["kind"] for v in range(len(answers))}
        assert len(kinds) == 1
        idents += [it.get("ident") for it in items] + [group.get("ident")]
        for it in items:
            labels = [lab.get("ident") for lab in it.iter() if _local(lab.tag) == "response_label"]
            assert len(set(labels)) == len(labels)
            idents += labels
    assert len({i for i in idents if i.startswith("derive")}) == len([i for i in idents if i.startswith("derive")])
    for ident in idents:
        assert IDENT.fullmatch(ident) and not ident.lower().endswith(("_ans", "_str")), ident


def _scoring(it: ET.Element) -> list[ET.Element]:
    return [c for c in q(it, "resprocessing/respcondition")
            if any(float(s.text or 0) > 0 for s in q(c, "setvar") if s.get("varname") == "SCORE")]


def test_numerical_answers_read_as_canvas_reads_them():
    """Canvas: exact from the varequal inside <or>, margin = varlte − exact (the lower bound is not read): they must
    be answers.json's answer and tolerance, with vargte = exact − margin, plain decimals with a point."""
    files = exam_files()
    answers = json.loads(files["answers.json"])
    checked = 0
    for i, group in enumerate(q(assessment(files), "assessment/section/section")):
        for v, it in enumerate(q(group, "item")):
            expected = answers[v]["questions"][i]
            if field(it, "question_type") != "numerical_question":
                continue
            (condition,) = _scoring(it)
            (either,) = q(condition, "conditionvar/or")
            exact = Decimal(q(either, "varequal")[0].text)
            lower, upper = (Decimal(q(either, f"and/{t}")[0].text) for t in ("vargte", "varlte"))
            assert float(exact) == expected["answer"]
            assert float(upper - exact) == pytest.approx(expected["tolerance"], rel=1e-12)
            assert exact - lower == upper - exact > 0
            for text in (q(either, "varequal")[0].text, q(either, "and/vargte")[0].text):
                assert re.fullmatch(r"-?\d+(\.\d+)?", text), text
            assert [p for p in it.iter() if _local(p.tag) == "render_fib"][0].get("fibtype") == "Decimal"
            checked += 1
    assert checked >= 5 * 4


def test_choices_score_the_right_option_and_explain_each_typical_mistake():
    """One condition sets SCORE for the right option (the one answers.json names), each wrong option's feedback
    condition comes before it (a later one would make Canvas reset the option to wrong), and says its mistake."""
    files = exam_files()
    answers = json.loads(files["answers.json"])
    seen = set()
    for i, group in enumerate(q(assessment(files), "assessment/section/section")):
        for v, it in enumerate(q(group, "item")):
            expected = answers[v]["questions"][i]
            if field(it, "question_type") != "multiple_choice_question":
                continue
            seen.add(expected["kind"])
            conditions = q(it, "resprocessing/respcondition")
            (right,) = _scoring(it)
            assert conditions[-1] is right and right.get("continue") == "No"
            chosen = q(right, "conditionvar/varequal")[0].text
            if expected["kind"] == "choice":
                assert chosen == f"c{'abcdefgh'.index(expected['correct']) + 1}"
            feedback = {f.get("ident"): "".join(f.itertext()) for f in q(it, "itemfeedback")}
            wrong = [c for c in conditions[1:-1]]
            assert len(wrong) == len(expected["distractors"])
            for c in wrong:
                option = q(c, "conditionvar/varequal")[0].text
                link = q(c, "displayfeedback")[0].get("linkrefid")
                assert option != chosen and link == f"{option}_fb" and feedback[link].startswith("<p>Not quite: ")
            links = {d.get("linkrefid") for d in it.iter() if _local(d.tag) == "displayfeedback"}
            assert links <= set(feedback)
    assert seen == {"choice", "formula"}


def test_a_shape_is_a_short_answer_with_every_spelling_and_nothing_else():
    files = exam_files()
    answers = json.loads(files["answers.json"])
    for i, group in enumerate(q(assessment(files), "assessment/section/section")):
        for v, it in enumerate(q(group, "item")):
            if field(it, "question_type") != "short_answer_question":
                continue
            rows, cols = answers[v]["questions"][i]["answer"].split("x")
            accepted = {e.text for e in it.iter() if _local(e.tag) == "varequal"}
            assert f"{rows}x{cols}" in accepted and f"({rows}, {cols})" in accepted
            assert all(rows in a and cols in a and "*" not in a.replace(f"{rows}*{cols}", "") for a in accepted)
            assert "3x12" not in accepted


class _Html(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ("br", "img"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, tag

    def handle_data(self, data):
        self.text.append(data)


def test_question_texts_are_whole_html_with_the_network_and_mathjax_delimiters():
    """Every item's text is balanced HTML that describes its own network (a student meets each question in a group
    of its own) and writes math as \\( … \\), which Canvas's MathJax typesets."""
    for it in assessment(exam_files()).iter("{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}item"):
        body = q(it, "presentation/material/mattext")[0].text
        parser = _Html()
        parser.feed(body)
        parser.close()
        text = "".join(parser.text)
        assert parser.open == [] and "The network has" in text and "\\(" in text and "$" not in text


def test_user_text_is_escaped_in_the_package(tmp_path):
    """A title with markup is text in every file: well-formed XML, no live tag in the HTML Canvas shows."""
    text = re.sub(r"(?m)^title = .*$", 'title = "A & B <script>alert(1)</script>"', example_text("linear-221"), count=1)
    spec = tmp_path / "t.toml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "exam"
    assert main(["exam", str(spec), "--variants", "1", "--out", str(out), "--format", "qti12"]) == 0
    with zipfile.ZipFile(out / "qti12.zip") as archive:
        for n in archive.namelist():
            root = ET.fromstring(archive.read(n).decode("utf-8"))         # well-formed XML
            for e in root.iter():            # the HTML Canvas shows (item texts, the quiz's description)
                if _local(e.tag) in ("mattext", "description"):
                    assert "<script" not in (e.text or ""), n
    assert "A & B <script>" in ET.fromstring(zipfile.ZipFile(out / "qti12.zip").read("imsmanifest.xml")).find(
        ".//{http://www.imsglobal.org/xsd/imsmd_v1p2}string").text
