"""--sections and --focus: the sections a reader asks for, numbered in order, and the parameters the
backward pass and the update follow, with only what their gradients need."""

from __future__ import annotations

import re

import pytest

from derive import solve
from derive.cli import main
from derive.numeric.rounding import number
from derive.text.document import SECTIONS, View, build
from derive.text.render import render_solution


def headings(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.M)


def test_the_chosen_sections_are_numbered_in_order_whatever_is_left_out(capsys):
    assert main(["solve", "sigmoid-222", "--sections", "update,forward,backward"]) == 0
    # the documents' own order, not the option's: a reader's list cannot scramble the derivation
    assert headings(capsys.readouterr().out) == ["1. Forward pass", "2. Backward pass", "3. Update"]


def test_every_section_by_default_and_the_history_on_its_own(capsys):
    assert main(["solve", "softmax-233"]) == 0
    assert [h.split(". ", 1)[1] for h in headings(capsys.readouterr().out)] == [
        "Setup", "Notation", "Forward pass", "Loss", "Backward pass", "General formulas", "Update",
        "Forward pass with the new parameters", "Verification"]
    assert main(["solve", "softmax-233", "--sections", "setup,history"]) == 0
    assert headings(capsys.readouterr().out) == ["1. Setup", "2. Loss per step"]


def test_the_notation_points_at_the_general_formulas_only_where_they_are_shown(capsys):
    assert main(["solve", "linear-221", "--sections", "notation,general"]) == 0
    assert "The matrix form (section 2) uses these matrices" in capsys.readouterr().out
    assert main(["solve", "linear-221", "--sections", "notation"]) == 0
    assert "The matrix form uses these matrices" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["tex", "html"])
def test_sections_in_latex_and_html(capsys, fmt):
    assert main(["solve", "sigmoid-222", "--format", fmt, "--sections", "loss,update"]) == 0
    out = capsys.readouterr().out
    if fmt == "tex":
        assert re.findall(r"\\section\{(.+?)\}", out) == ["Loss", "Update"]      # LaTeX numbers them 1, 2
    else:
        assert re.findall(r"<h2[^>]*>(.+?)</h2>", out) == ["1. Loss", "2. Update"]


def test_focus_follows_one_parameter_and_what_its_gradient_needs():
    solution = solve("sigmoid-222")
    doc = build(solution, view=View(focus=("w1",)))
    part = doc.backward[0]
    shown = [eq.lhs for group in part.groups for eq in group.equations]
    # both outputs' δ (every unit above w1's) and h1's, not h2's; of the parameters only w1
    assert r"\delta_{h_{1}}" in shown and r"\delta_{h_{2}}" not in shown
    assert r"\delta_{o_{1}}" in shown and r"\delta_{o_{2}}" in shown
    gradients = [lhs for lhs in shown if lhs.startswith(r"\frac{\partial E}{\partial w") or "partial b" in lhs]
    assert gradients == [r"\frac{\partial E}{\partial w_{1}}"]
    assert [eq.lhs for eq in doc.update.equations] == ["w_{1}"] and doc.update_matrices == ()
    # and its numbers are the whole document's
    truth = solution.json()["names"]["w1"]
    row = next(eq for group in part.groups for eq in group.equations if eq.lhs.endswith("w_{1}}"))
    assert row.rows[-1].tex == number(truth["gradient"], inexact=True).tex
    assert doc.update.equations[0].rows[-1].tex == number(truth["updated"], inexact=True).tex


def test_focus_on_a_parameter_of_the_output_layer_skips_the_layers_below():
    doc = build(solve("sigmoid-222"), view=View(focus=("w5", "b2")))
    titles = [group.title for group in doc.backward[0].groups]
    assert titles == ["Output layer (layer 2)"]


@pytest.mark.parametrize("args, message", [
    (["--focus", "w9"], "--focus: no parameter is named 'w9'"),
    (["--sections", "forward,nonsense"], "--sections: no section is named 'nonsense'"),
    (["--sections", "history"], "--sections: history: the spec trains one step"),
])
def test_bad_views_are_one_line_errors(capsys, args, message):
    assert main(["solve", "linear-221", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err


def test_the_default_view_is_the_whole_document():
    solution = solve("linear-221")
    assert build(solution).outline.shown == SECTIONS
    assert render_solution(solution, "md") == render_solution(solution, "md", doc=build(solution, view=View()))
