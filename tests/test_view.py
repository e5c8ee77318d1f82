"""--sections and --focus: the sections a reader asks for, numbered in order, and the parameters the
backward pass and the update follow, with only what their gradients need."""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

import mpmath
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from derive import solve
from derive.cli import main
from derive.derived.checked import FormulaError
from derive.errors import RenderError
from derive.model.examples import example_names, example_text
from derive.numeric.rounding import number
from derive.text import gradients as grads
from derive.text.builder import Builder
from derive.text.document import SECTIONS, View, build
from derive.text.render import render_solution
from tests.test_properties import forward, initial, moved


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
    assert main(["solve", "linear-221", "--sections", "notation,general", "--detail", "full"]) == 0
    assert "The matrix form (section 2) uses these matrices" in capsys.readouterr().out
    assert main(["solve", "linear-221", "--sections", "notation", "--detail", "full"]) == 0
    assert "The matrix form uses these matrices" in capsys.readouterr().out
    assert main(["solve", "linear-221", "--sections", "notation,general"]) == 0     # short: no matrix form
    out = capsys.readouterr().out
    assert "The general formulas (section 2) use these symbols" in out and "matrix form" not in out.lower()


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
    assert build(solution).outline.shown == tuple(k for k in SECTIONS if k != "updates")     # full batch: no next ones
    assert render_solution(solution, "md") == render_solution(solution, "md", doc=build(solution, view=View()))


# -- the short document, the default: each δ once, one chain per layer, a batch's samples in tables --

def _raw(name: str) -> dict:
    """The example's spec as tests/test_properties.py's independent mpmath forward pass reads it."""
    s = solve(name)
    raw = tomllib.loads(example_text(name))
    net = raw["network"]
    net.setdefault("convention", "column")
    net.setdefault("bias", s.spec.bias.uniform)
    if isinstance(net["activation"], str):
        net["activation"] = [net["activation"]] * s.spec.depth
    return raw


def _central_differences(name: str) -> dict[str, mpmath.mpf]:
    """∂E/∂p of every parameter by its plain name, from central differences of the mpmath forward pass."""
    s, raw = solve(name), _raw(name)
    net, row = s.network, raw["network"]["convention"] in ("row", "transposed")     # W given input × output
    where = {}
    for l, layer in enumerate(net.weights):
        for j, units in enumerate(layer):
            for k, w in enumerate(units):
                where[w] = (f"W{l + 1}", (k, j) if row else (j, k))
        for j, b in enumerate(net.biases[l]):
            where[b] = (f"b{l + 1}", () if s.spec.bias.of(l) == "shared" else (j,))
    h = mpmath.mpf(10) ** -20
    with mpmath.workdps(50):
        params = initial(raw)
        return {s.derivation.names[p].plain: (forward(raw, moved(params, *where[p], h))[0]
                                              - forward(raw, moved(params, *where[p], -h))[0]) / (2 * h)
                for p in net.parameters}


def _value(tex: str) -> float:
    """A number as the documents print it: -0.0380982, 1.9 \\times 10^{-5}, with or without brackets."""
    text = tex.replace(r"\left(", "").replace(r"\right)", "").strip()
    mantissa, _, power = text.partition(r" \times 10^{")
    return float(mantissa) * (10 ** int(power.rstrip("}")) if power else 1)


def _arithmetic(tex: str) -> float:
    """The value of a gradient line's numbers: a product of printed factors, or a sum of them."""
    return sum(math.prod(_value(f) for f in term.split(r"\cdot")) for term in tex.split(" + "))


@pytest.mark.parametrize("name", ["linear-221", "sigmoid-222", "tanh-231", "softmax-233"])   # one sample each
def test_the_short_backward_pass_derives_each_delta_once_and_one_chain_per_layer(name):
    """Each δ has one derivation; per layer the first parameter's chain is written out and every other
    parameter is a row of the layer's table from its δ, whose printed numbers multiply to the printed value, and
    that value is the derivative by central differences of an independent mpmath forward pass."""
    s = solve(name)
    d = build(s)
    names = {p: n.latex for p, n in s.derivation.names.items()}
    gradients = {rf"\frac{{\partial E}}{{\partial {names[p]}}}": s.derivation.names[p].plain for p in s.network.parameters}
    # a table's row writes it on one line (a fraction in a table's row is set small)
    gradients |= {rf"\partial E/\partial {names[p]}": s.derivation.names[p].plain for p in s.network.parameters}
    fd = _central_differences(name)
    deltas = [eq.lhs for part in d.backward for g in part.groups for eq in g.equations if eq.lhs.startswith(r"\delta")]
    assert sorted(deltas) == sorted(names[s.derivation.adjoint[z]] for layer in s.network.nets for z in layer)
    shown = []
    for g in d.backward[0].groups:
        chain, = [eq for eq in g.equations if eq.lhs in gradients]
        assert r"\partial z" in chain.rows[0].tex                  # the chain, factor by factor
        rows = g.table.rows if g.table else ()
        for r in rows:
            assert r"\partial" not in r.rule and r"\delta" in r.rule
            if r.numbers:                                           # δ alone: its value is the value
                assert _arithmetic(r.numbers) == pytest.approx(_value(r.value.tex), rel=2e-5, abs=1e-12), r
        values = [(chain.lhs, chain.rows[-1].tex)] + [(r.tex, r.value.tex) for r in rows]
        for lhs, value in values:
            assert _value(value) == pytest.approx(float(fd[gradients[lhs]]), rel=1e-5, abs=1e-12)
        shown += [lhs for lhs, _ in values]
    assert sorted(gradients[lhs] for lhs in shown) == sorted(set(gradients.values()))


# the built-in examples of one sample, and the 2-3-3-2 network: where the short document tabulates
SINGLE = ["linear-221", "sigmoid-222", "softmax-233", "tanh-231", "2-3-3-2"]


def _solved(name: str):
    return solve(BUDGETED.get(name, name))


@pytest.mark.parametrize("name", SINGLE)
def test_each_layers_other_parameters_are_one_table_whose_rows_are_the_engines_gradients(name):
    """Short, one sample: after each layer's chain a table holds every other parameter of the layer, in order, and
    no display of its own; each row's value is the JSON's gradient (the engine's, not the document's), its numbers
    multiply (or, for a shared bias, add) to that value, and the Markdown and LaTeX print the rows as a table."""
    s = _solved(name)
    d, truth = build(s), s.json()["names"]
    md, tex = render_solution(s, "md"), render_solution(s, "tex")
    b = Builder(s, 6, full=False)
    tables = 0
    for l, g in zip(reversed(range(s.spec.depth)), d.backward[0].groups):
        first, *rest = [s.derivation.names[p].plain for p in b.layer_parameters(l)]
        assert [r.plain for r in g.table.rows] == rest if rest else g.table is None
        tables += bool(rest)
        lhs = {eq.lhs for eq in g.equations}
        for r in g.table.rows if g.table else ():
            assert r.tex not in lhs                                 # no display of its own
            assert _value(r.value.tex) == pytest.approx(truth[r.plain]["gradient"], rel=1e-5, abs=1e-12)
            if r.numbers:
                assert _arithmetic(r.numbers) == pytest.approx(_value(r.value.tex), rel=2e-5, abs=1e-12)
            assert f"| ${r.tex}$ | $= {r.rule}$ |" in md and f"{r.tex} &= {r.rule}" not in md
            assert f"${r.tex}$ & $= {r.rule}$ &" in tex and f"{r.tex} &= {r.rule}" not in tex
    assert tables and md.count(r"| derivative | from its $\delta$ | numbers | value |") == tables
    assert tex.count(r"derivative & from its $\delta$ & numbers & value \\") == tables


@pytest.mark.parametrize("name", SINGLE)
def test_a_table_row_is_printed_as_the_notations_printer_prints_its_rule(name):
    """A row's rule and numbers are composed from the names without SymPy's printer: they must be what the printer
    gives for the same rule (the notation's escaped names, the numbers bracketed as in a product), and the
    relation before the numbers must say whether they are all exact."""
    s = _solved(name)
    b, env = Builder(s, 6, full=False), s.training.first.samples[0]
    for g in build(s).backward[0].groups:
        for r in g.table.rows if g.table else ():
            rule = b.rule_formula(s.symbol(r.plain))
            numbers, exact_inputs = b.substituted(rule, env, keep_order=True)
            assert r.rule == b.tex(rule, keep_order=True)
            assert r.numbers in ("", numbers) and r.relation == ("=" if exact_inputs else r"\approx")


def test_the_table_follows_focus_and_full_detail_keeps_a_line_each():
    s = solve("sigmoid-222")
    output = build(s, view=View(focus=("w6", "w8"))).backward[0].groups[0]
    assert [eq.lhs for eq in output.equations][-1].endswith("w_{6}}") and [r.plain for r in output.table.rows] == ["w8"]
    assert all(g.table is None for g in build(s, view=View(focus=("w5", "w1"))).backward[0].groups)  # no empty table
    assert "| derivative |" not in render_solution(s, "md", doc=build(s, view=View(focus=("w5",))))
    full = build(s, view=View(detail="full"))
    assert all(g.table is None for g in full.backward[0].groups)
    assert sum(eq.lhs.startswith(r"\frac{\partial E}") and "o_" not in eq.lhs
               for g in full.backward[0].groups for eq in g.equations) == len(s.network.parameters)
    assert all(g.table is None for g in build(solve("sigmoid-451-batch")).backward[0].groups)    # a batch's: after


def test_a_table_row_that_disagrees_with_the_chain_rule_stops_the_document():
    """The layer's rules are checked at once before the table is printed: w6 given w5's rule (δ_o1 h1) raises."""
    s = solve("sigmoid-222")
    b, env = Builder(s, 6, full=False), s.training.first.samples[0]
    w5, w6 = s.symbol("w5"), s.symbol("w6")
    right = {p: grads.terms(b.d, p) for p in (w5, w6)}
    assert grads.hold(right, b.d.adjoint, b.point(env), b.check_digits)
    b.check_rules(right, env)
    wrong = {w5: right[w5], w6: right[w5]}
    assert not grads.hold(wrong, b.d.adjoint, b.point(env), b.check_digits)
    with pytest.raises(FormulaError, match="the line for w6 gives"):
        b.check_rules(wrong, env)


def test_hostile_text_stays_out_of_the_tables():
    raw = {"title": "</title><script>alert(1)</script> | & $x$", "description": "<img src=x onerror=alert(1)> | \\",
           "network": {"layers": [2, 2, 1], "activation": "sigmoid", "bias": "neuron"},
           "data": {"x": [[1, 0.5]], "y": [[1]]}, "init": {"seed": 3}}
    s = solve(raw)
    page, md = render_solution(s, "html"), render_solution(s, "md")
    backward = page[page.index('<section id="backward">'):page.index('<section id="general">')]
    assert backward.count("<table>") == 2 and "<script" not in page and "<img" not in page
    rows = [line for line in md.splitlines() if line.startswith("| $\\partial E/") and "| $= " in line]
    assert len(rows) == 6 + 1 and all(line.count(" | ") == 3 and "script" not in line for line in rows)


def test_the_short_batch_works_sample_1_and_tabulates_every_sample():
    """sigmoid-451-batch: one sample derived, the tables hold every sample's net inputs and outputs (against the
    mpmath forward pass) and every sample's ∂e_n/∂p, which add up to ∂E/∂p by central differences."""
    name = "sigmoid-451-batch"
    s, raw = solve(name), _raw(name)
    d = build(s)
    assert [p.sample for p in d.forward] == [1] and [p.sample for p in d.backward] == [1]
    with mpmath.workdps(50):
        _, outputs, nets = forward(raw, initial(raw))
    names = {p: n.latex for p, n in s.derivation.names.items()}
    z = [names[v] for layer in s.network.nets for v in layer]
    table = {r.tex: [_value(v.tex) for v in r.values] for t in d.forward_table for r in t.rows}
    for i, tex in enumerate(z):
        assert table[tex] == pytest.approx([float(nets[n * len(z) + i]) for n in range(5)], rel=1e-5, abs=1e-12)
    assert table[names[s.network.outputs[0]]] == pytest.approx([float(o[0]) for o in outputs], rel=1e-5)
    fd = _central_differences(name)
    rows = {r.tex: r.values for t in d.backward_table for r in t.rows}
    for p in s.network.parameters:
        shown = rows[rf"\partial e_{{n}}/\partial {names[p]}"]
        assert sum(_value(v.tex) for v in shown) == pytest.approx(float(fd[s.derivation.names[p].plain]), rel=1e-4)
    assert [t.samples for t in d.backward_table] == [(1, 2, 3, 4, 5)]
    assert len(d.loss.equations) == 2                   # e_1 worked out, and E as the sum of every e_n
    # 31 parameters: the first of W1, b1, W2, b2 updated in a line (p − η ∂E/∂p, η = 0.5), the matrices for all
    assert [eq.lhs for eq in d.update.equations] == [names[s.symbol(p)] for p in ("w1_11", "w2_11", "b1", "b2")]
    assert len(d.update_matrices) == 2
    for eq in d.update.equations:
        plain = next(q for q in ("w1_11", "b1", "w2_11", "b2") if names[s.symbol(q)] == eq.lhs)
        before = float(s.training.first.parameters[s.symbol(plain)])
        assert _value(eq.rows[-1].tex) == pytest.approx(before - 0.5 * float(fd[plain]), rel=1e-5)


def test_full_detail_keeps_every_chain_and_the_forward_pass_after_the_update(capsys):
    assert main(["solve", "sigmoid-222", "--detail", "full"]) == 0
    full = capsys.readouterr().out
    assert main(["solve", "sigmoid-222"]) == 0
    short = capsys.readouterr().out
    assert full.count(r"\underbrace") > short.count(r"\underbrace") > 0
    assert "### The layer-wise recursion" in full and "### The layer-wise recursion" not in short
    assert "### Matrix form" in full and "### Any number of layers" in short
    assert full.count(r"z_{o_{1}} &=") == 2 and short.count(r"z_{o_{1}} &=") == 1     # after the update: full only
    assert len(short) < 0.8 * len(full)


def test_a_one_line_gradient_that_disagrees_with_the_chain_rule_stops_the_document():
    """The line δ·a is checked against the chain rule's value before it is printed: a wrong rule (2 δ a) raises."""
    s = solve("sigmoid-222")
    b, env = Builder(s, 6, full=False), s.training.first.samples[0]
    w6 = s.symbol("w6")
    right = sum(b.d.adjoint[e.child] * e.local for e in b.d.edges[w6])
    b.check_line(w6, right, env)
    with pytest.raises(FormulaError, match="the line for w6 gives"):
        b.check_line(w6, 2 * right, env)


def test_an_unknown_detail_is_a_one_line_error():
    with pytest.raises(RenderError, match=r"--detail: no detail is named 'long'; expected short or full"):
        build(solve("linear-221"), view=View(detail="long"))


# the page budgets of the short PDF: today's counts (README, "Length"), each within issue 9's target where it has
# one (linear-221 ≤ 5, sigmoid-222 ≤ 7, sigmoid-rows-mse ≤ 9, sigmoid-451-batch ≤ 15, 2-3-3-2 ≤ 12), so that a
# document that grows longer fails here
PAGES = {"linear-221": 5, "sigmoid-222": 7, "sigmoid-rows-mse": 8, "sigmoid-451-batch": 11, "softmax-233": 10,
         "bce-221": 9, "relu-231": 9, "tanh-231": 8, "2-3-3-2": 10}
# the 2-3-3-2 network (its target: 12 pages), two hidden layers of three sigmoid units
BUDGETED = {"2-3-3-2": {"title": "A 2-3-3-2 network",
                        "network": {"layers": [2, 3, 3, 2], "activation": "sigmoid", "bias": "neuron", "loss": "mse"},
                        "data": {"x": [[0.5, -0.4]], "y": [[1, 0]]}, "init": {"seed": 11},
                        "train": {"learning_rate": 0.5}}}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_short_pdf_fits_its_page_budget_and_the_page_width(name, tmp_path):
    """Compiled with pdflatex: no line wider than the page (no Overfull \\hbox) and at most PAGES[name] pages."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing in CI (install texlive-latex-extra)")
        pytest.skip("pdflatex is not installed")
    (tmp_path / f"{name}.tex").write_text(render_solution(solve(BUDGETED.get(name, name)), "tex"), encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=tmp_path,
                            capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    log = (tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    assert result.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log
    pages = int(re.search(r"Output written on .*?\((\d+) pages?", log).group(1))
    assert pages <= PAGES[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", example_names())
def test_the_full_pdf_of_every_example_has_no_overfull_line(name, tmp_path):
    """--detail full, compiled with pdflatex: no line wider than the page. The shared bias of sigmoid-222 has two
    paths, each under its brace, and their sum was 43.7 pt beyond the margin on one line."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing in CI (install texlive-latex-extra)")
        pytest.skip("pdflatex is not installed")
    solution = solve(name)
    (tmp_path / f"{name}.tex").write_text(render_solution(solution, "tex", doc=build(solution, view=View(detail="full"))),
                                          encoding="utf-8")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=tmp_path,
                            capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    log = (tmp_path / f"{name}.log").read_text(encoding="utf-8", errors="replace")
    assert result.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log, [line for line in log.splitlines() if "Overfull" in line]


# output layer and loss pairs the spec allows, and targets for them
OUTPUTS = [("sigmoid", "bce", lambda rng, j: [rng.choice([0, 1]) for _ in range(j)]),
           ("softmax", "cross_entropy", lambda rng, j: [int(k == rng.randrange(j)) for k in range(j)]),
           ("linear", "mse", lambda rng, j: [round(rng.uniform(-1, 1), 2) for _ in range(j)]),
           ("tanh", "half_sse", lambda rng, j: [round(rng.uniform(-0.9, 0.9), 2) for _ in range(j)])]


@st.composite
def networks(draw) -> dict:
    """A network up to 4-8-8-1 (or 3 outputs), any hidden activation, bias and convention, 1 to 3 samples."""
    hidden = draw(st.lists(st.integers(1, 8), min_size=0, max_size=2))
    output, loss, targets = draw(st.sampled_from(OUTPUTS))
    layers = [draw(st.integers(1, 4)), *hidden, draw(st.integers(2 if output == "softmax" else 1, 3))]
    acts = [draw(st.sampled_from(["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "linear"]))
            for _ in hidden] + [output]
    rng = random.Random(draw(st.integers(0, 10 ** 6)))
    n = draw(st.integers(1, 3))
    return {"title": "A random network",
            "network": {"layers": layers, "activation": acts, "loss": loss,
                        "bias": draw(st.sampled_from(["none", "shared", "neuron"])),
                        "convention": draw(st.sampled_from(["column", "row", "transposed"]))},
            "data": {"x": [[round(rng.uniform(-1, 1), 2) for _ in range(layers[0])] for _ in range(n)],
                     "y": [targets(rng, layers[-1]) for _ in range(n)]},
            "init": {"seed": rng.randrange(1000)}, "train": {"learning_rate": 0.5, "steps": draw(st.integers(1, 3))}}


@pytest.mark.slow
@settings(max_examples=8, deadline=None, derandomize=True)
@given(networks())
@example({"title": "A 4-8-8-1 network", "network": {"layers": [4, 8, 8, 1], "activation": ["tanh", "relu", "sigmoid"],
                                                   "bias": "neuron", "loss": "bce"},
          "data": {"x": [[0.5, -0.4, 0.1, 0.9], [0.2, 0.3, -0.7, 0.4]], "y": [[1], [0]]}, "init": {"seed": 5},
          "train": {"learning_rate": 0.5, "steps": 3}})
# two and three sigmoid outputs under bce: the loss of one sample is wider than the line (the setup's formula was
# 363 pt too wide, the loss section's numbers 14 pt and 244 pt); it is written an output's term a line
@example({"title": "A 1-2 network", "network": {"layers": [1, 2], "activation": "sigmoid", "bias": "neuron",
                                               "loss": "bce"},
          "data": {"x": [[0.5], [-0.3], [0.2]], "y": [[1, 0], [0, 1], [1, 1]]}, "init": {"seed": 3},
          "train": {"learning_rate": 0.5, "steps": 2}})
@example({"title": "A 2-3 network", "network": {"layers": [2, 3], "activation": "sigmoid", "bias": "neuron",
                                               "loss": "bce"},
          "data": {"x": [[0.5, 0.1], [-0.3, 0.2]], "y": [[1, 0, 1], [0, 1, 0]]}, "init": {"seed": 3},
          "train": {"learning_rate": 0.5, "steps": 2}})
# a 6-6-6 softmax network: six columns, not the seven that shrank a matrix display, but of nine-character numbers;
# the update's \qquad - 0.1 [∂E/∂W⁽¹⁾] was 20 pt too wide in the one display of every update
@example({"title": "A 6-6-6 softmax network", "network": {"layers": [6, 6, 6], "activation": ["sigmoid", "softmax"],
                                                         "bias": "shared", "loss": "cross_entropy"},
          "data": {"x": [[0.5, -0.4, 0.1, 0.9, -0.2, 0.3], [0.2, 0.3, -0.7, 0.4, 0.8, -0.5]],
                   "y": [[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]]}, "init": {"seed": 1}})
def test_random_networks_up_to_4_8_8_1_compile_without_an_overfull_line(raw):
    """Hypothesis networks (the same 8 on every run) compiled with pdflatex: no line wider than the page."""
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing in CI (install texlive-latex-extra)")
        pytest.skip("pdflatex is not installed")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "random.tex").write_text(render_solution(solve(raw), "tex"), encoding="utf-8")
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "random.tex"], cwd=folder,
                                capture_output=True, text=True, timeout=300)
        log = (Path(folder) / "random.log").read_text(encoding="latin-1")
    assert result.returncode == 0, log[-2000:]
    assert "Overfull \\hbox" not in log, (raw, [line for line in log.splitlines() if "Overfull" in line])


@pytest.mark.parametrize("detail", ["short", "full"])
def test_no_page_break_between_a_result_and_its_computation(detail):
    """In LaTeX every row that continues a derivation follows a starred break (\\\\*: no page break there);
    only between two derivations may a page end."""
    s = solve("sigmoid-451-batch")
    tex = render_solution(s, "tex", doc=build(s, view=View(detail=detail)))
    continued = re.findall(r"(\\\\\*?|\\\\\[3pt\])\n&", tex)
    assert continued and set(continued) == {"\\\\*"}


def test_the_full_matrix_form_shows_each_matrix_of_values():
    """--detail full: Z^(1) of sigmoid-451-batch as a matrix of numbers, one column per sample, each entry the
    net input the independent mpmath forward pass gives."""
    name = "sigmoid-451-batch"
    s, raw = solve(name), _raw(name)
    d = build(s, view=View(detail="full"))
    with mpmath.workdps(50):
        _, _, nets = forward(raw, initial(raw))
    z1 = next(f.equation for f in d.general.matrix if f.equation.lhs == s.network.notation.matrix("Z", 1).latex)
    body = z1.rows[-1].tex.removeprefix(r"\begin{bmatrix}").removesuffix(r"\end{bmatrix}")
    shown = [[_value(v) for v in row.split("&")] for row in body.split(r"\\")]
    width = 6                                               # units per sample in nets: 5 hidden, 1 output
    assert shown == [pytest.approx([float(nets[n * width + j]) for n in range(5)], rel=1e-5) for j in range(5)]
    computed = tuple(s.network.notation.matrix(kind, l).latex for kind in ("Z", "A", "Delta") for l in (1, 2))
    assert all(f.equation.rows[-1].tex.startswith(r"\begin{bmatrix}") for f in d.general.matrix
               if f.equation.lhs in computed)
    assert sum(f.equation.lhs in computed for f in d.general.matrix) == 6


@pytest.mark.parametrize("fmt, template, title, heading", [
    ("md", '{% extends "default/solution.md.j2" %}{% block title %}# Homework 3, problem 2{% endblock %}',
     "# Homework 3, problem 2", "# A 2-2-1"),
    ("tex", '((* extends "default/solution.tex.j2" *))((* block title *))\\section*{Homework 3}((* endblock *))',
     "\\section*{Homework 3}", "\\LARGE A 2-2-1"),
    ("html", '{% extends "default/solution.html.j2" %}{% block title %}<h1>Homework 3</h1>{% endblock %}',
     "<h1>Homework 3</h1>", "<h1>A 2-2-1"),
])
def test_a_template_that_overrides_the_title_keeps_the_description_and_the_rounding(tmp_path, fmt, template, title,
                                                                                     heading):
    """The README's own example: the title block is the heading alone; the description, the generator and the
    rounding statement are the block `intro`, kept unless a template overrides that too."""
    (tmp_path / f"solution.{fmt}.j2").write_text(template, encoding="utf-8")
    s = solve("linear-221")
    text = render_solution(s, fmt, template_dir=tmp_path)
    assert title in text and "hmkcode" in text and "half away from zero" in text
    assert heading not in text                        # the built-in heading is replaced, not added to


def test_a_wrong_table_row_beside_a_saturated_unit_stops_the_document(monkeypatch):
    """sigmoid-222 with inputs × 10⁴: the hidden units saturate and their δ are about 10^−300, so every row of its table is a tiny
    number. A rule whose value is off by a factor of 2 was measured against 1 (within 10^−25 of it: any tiny
    number); it is now measured against its own magnitude and stops the document."""
    raw = _raw("sigmoid-222")
    raw["data"]["x"] = [[v * 10 ** 4 for v in row] for row in raw["data"]["x"]]
    s = solve(raw)
    assert render_solution(s, "md")         # the true rules hold
    real = grads.terms

    def doubled(d, p):
        rule = real(d, p)
        return rule + rule if rule and p.name in ("w2", "w3", "w4") else rule
    monkeypatch.setattr(grads, "terms", doubled)
    with pytest.raises(FormulaError):
        render_solution(solve(raw), "md")


def test_a_wrong_full_line_beside_a_saturated_unit_stops_the_document():
    """--detail full prints each parameter's line ∂E/∂w₂ = δ_{h₁} x₂ ≈ …; beside a saturated unit its value is about
    10^−118, and a rule twice too large is refused there as in the short document's table."""
    raw = _raw("sigmoid-222")
    raw["data"]["x"] = [[v * 10 ** 4 for v in row] for row in raw["data"]["x"]]
    s = solve(raw)
    b, env = Builder(s, 6, full=True), s.training.first.samples[0]
    w2 = s.symbol("w2")
    b.gradient_line(w2, env, 1)                 # the true rule holds
    real = b.rule_formula
    b.rule_formula = lambda p: 2 * real(p)      # type: ignore[method-assign]
    with pytest.raises(FormulaError):
        b.gradient_line(w2, env, 1)


def _saturated_bce() -> dict:
    """bce-221 with its output driven to about 1 − 10^−800 and targets 1: δ = (o − y)/N is about −10^−800, within
    the digits the engine carries for it."""
    raw = tomllib.loads(example_text("bce-221"))
    raw["init"]["W2"] = [[2000.0, 1500.0]]
    raw["data"]["y"] = [[1.0] for _ in raw["data"]["y"]]
    return raw


def test_a_wrong_short_output_delta_beside_a_saturated_unit_stops_the_document(monkeypatch):
    """The backward pass prints a saturated output's δ in its short form, (o − y)/N. Its check measured the
    difference against 1 (within 10^−25 of it: any tiny number), so a form twice too large passed; it is now measured
    against what the form's numbers carry (``arithmetic.propagated``) and stops the document."""
    from derive.derived import formulas
    raw = _saturated_bce()
    s = solve(raw)
    delta = s.exact_first.samples[0][s.derivation.adjoint[s.network.nets[-1][0]]]
    assert sp.Float("1e-3000") < abs(delta) < sp.Float("1e-100")
    assert r"\frac{1}{2}" in render_solution(s, "md")         # the true form holds
    real = formulas.unit_short_delta
    monkeypatch.setattr(formulas, "unit_short_delta", lambda net, j: 2 * real(net, j))
    with pytest.raises(FormulaError, match="the short form of"):
        render_solution(solve(raw), "md")


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("field", ["rule", "recursion"])
def test_a_wrong_recursion_form_beside_a_saturated_unit_stops_the_document(layer, field):
    """--detail full prints the layer-wise recursion. In the saturated bce (∂e/∂o is 10^16860 at the second sample)
    its forms were measured against the sample's largest value: every δ form twice too large passed. The allowance
    is now what the form's own numbers carry (``arithmetic.propagated``)."""
    from derive.derived import checked, formulas
    raw = tomllib.loads(example_text("bce-221"))
    raw["init"]["W2"] = [[500000.0, -400000.0]]
    raw["data"]["y"] = [[1e-06], [0.0]]
    s = solve(raw)
    layers = list(formulas.layer_recursion(s.derivation))
    checked.check_recursion(s.derivation, s.exact_first, layers)       # the true forms hold
    layers[layer] = dataclasses.replace(layers[layer], units=tuple(
        dataclasses.replace(u, **{field: 2 * getattr(u, field)}) for u in layers[layer].units))
    with pytest.raises(FormulaError, match="recursion formula"):
        checked.check_recursion(s.derivation, s.exact_first, layers)
