"""The document model: published numbers, the shape of every section, exact strings of chains."""

from __future__ import annotations

import functools
import math
import random
import re
import tomllib
from dataclasses import replace

import mpmath
import pytest
import sympy as sp

from derive.derived.solution import solve
from derive.derived import verification
from derive.derived.verification import _compiled_definitions, _direct_difference, verify
from derive.exam.sheets import training_text
from derive.model.examples import example_text
from derive.model.registry import ACTIVATIONS, NUMERIC
from derive.text.document import Document, Equation, View, build
from derive.text.render import render_solution

FULL = View(detail="full")      # these tests read every chain; tests/test_view.py tests the short document


@functools.cache
def doc(name: str, precision: int = 6) -> Document:
    return build(solve(name), precision, FULL)


def equations(d: Document, section: str) -> list[Equation]:
    parts = getattr(d, section)
    return [eq for part in parts for g in part.groups for eq in g.equations]


def find(eqs: list[Equation], lhs: str) -> Equation:
    matches = [eq for eq in eqs if eq.lhs == lhs]
    assert matches, f"no equation for {lhs}"
    return matches[0]


def value(eq: Equation) -> str:
    return eq.rows[-1].tex


def dE(name: str) -> str:
    return rf"\frac{{\partial E}}{{\partial {name}}}"


# -- the first seed (hmkcode): its published numbers ---------------------------------------------

def test_first_seed_prediction_delta_and_loss():
    d = doc("linear-221")
    assert value(find(equations(d, "forward"), "o")) == "0.191"                 # the post's prediction
    assert value(find(equations(d, "backward"), r"\delta_{o}")) == "-0.809"     # Δ = 0.191 − 1
    loss = d.loss.equations[0]
    assert [r.tex for r in loss.rows] == [r"\frac{1}{2} \left(y - o\right)^{2}",
                                          r"\frac{1}{2} \left(1 - 0.191\right)^{2}", "0.3272405"]   # ½·0.809²


def test_first_seed_updated_weights_are_the_published_ones():
    d = doc("linear-221")
    published = ["0.121326", "0.226989", "0.132135", "0.0982025", "0.1743825", "0.169416"]
    assert [value(eq) for eq in d.update.equations] == published
    assert all(eq.rows[-1].relation == "=" for eq in d.update.equations)       # exact decimals, not rounded
    # the post rounds its new prediction to 0.26; unrounded it is 0.2557457808075
    assert d.after.outputs[0].after.tex == "0.255746" and not d.after.outputs[0].after.exact


def test_first_seed_chain_for_w1_exact_strings():
    """∂E/∂w1 = Δ·w5·x1 in the post; here with the reused δ_o and every factor's value."""
    eq = find(equations(doc("linear-221"), "backward"), dE("w_{1}"))
    assert [(r.relation, r.tex) for r in eq.rows] == [
        ("=", r"\underbrace{\delta_{o} \frac{\partial z_{o}}{\partial h_{1}} \frac{\partial h_{1}}{\partial z_{h_{1}}}}"
              r"_{\delta_{h_{1}}} \frac{\partial z_{h_{1}}}{\partial w_{1}}"),
        ("=", r"\delta_{o} \cdot w_{5} \cdot 1 \cdot x_{1}"),
        ("=", r"\left(-0.809\right) \cdot 0.14 \cdot 1 \cdot 2"),
        ("=", "-0.22652"),                                                       # −0.809 · 0.14 · 2
    ]


def test_first_seed_output_chain_and_update_line_exact_strings():
    d = doc("linear-221")
    eq = find(equations(d, "backward"), dE("w_{5}"))
    assert [r.tex for r in eq.rows] == [
        r"\underbrace{\frac{\partial E}{\partial o} \frac{\partial o}{\partial z_{o}}}_{\delta_{o}} "
        r"\frac{\partial z_{o}}{\partial w_{5}}",
        r"\left(o - y\right) \cdot 1 \cdot h_{1}",
        r"\left(-0.809\right) \cdot 1 \cdot 0.85",
        "-0.68765"]                                                              # −0.809 · 0.85
    update = d.update.equations[4]
    assert [(r.relation, r.tex) for r in update.rows] == [
        (r"\leftarrow", r"w_{5} - \eta\, \frac{\partial E}{\partial w_{5}}"),
        ("=", r"0.14 - 0.05 \cdot \left(-0.68765\right)"),
        ("=", "0.1743825")]


def test_forward_line_shows_formula_numbers_value():
    eq = find(equations(doc("linear-221"), "forward"), "z_{h_{1}}")
    assert [r.tex for r in eq.rows] == [r"w_{1} x_{1} + w_{2} x_{2}", r"0.11 \cdot 2 + 0.21 \cdot 3", "0.85"]


# -- Mazur's example: published to nine digits ------------------------------------------------------

MAZUR_FORWARD = {"h_{1}": "0.593270", "h_{2}": "0.596884", "o_{1}": "0.751365", "o_{2}": "0.772928"}
MAZUR_UPDATED = ["0.149781", "0.199561", "0.249751", "0.299502",      # 0.149780716 0.19956143 …
                 "0.358916", "0.408666", "0.511301", "0.561370",      # 0.35891648 0.408666186 … 0.561370121
                 "0.35", "0.6"]                                        # biases frozen, as in the post


def test_mazur_forward_loss_gradients_and_update():
    d = doc("sigmoid-222")
    forward = equations(d, "forward")
    assert {k: value(find(forward, k)) for k in MAZUR_FORWARD} == MAZUR_FORWARD
    assert value(d.loss.equations[0]) == "0.298371"                           # E_total = 0.298371109
    backward = equations(d, "backward")
    assert value(find(backward, dE("w_{5}"))) == "0.0821670"                   # 0.082167041
    assert value(find(backward, dE("w_{1}"))) == "0.000438568"                # 0.000438568
    assert [value(eq) for eq in d.update.equations] == MAZUR_UPDATED
    assert all(eq.rows[-1].relation == r"\approx" for eq in d.update.equations[:8])


def test_a_sum_over_several_paths_is_shown_as_a_sum():
    eq = find(equations(doc("sigmoid-222"), "backward"), dE("w_{1}"))
    partials, expressions, numbers = (r.tex for r in eq.rows[:3])
    assert r"\delta_{o_{1}} \frac{\partial z_{o_{1}}}{\partial h_{1}} + \delta_{o_{2}}" in partials
    assert r"\delta_{o_{1}} \cdot w_{5} + \delta_{o_{2}} \cdot w_{7}" in expressions
    assert r"0.138499 \cdot 0.4 + \left(-0.0380982\right) \cdot 0.5" in numbers   # Mazur's δ_o1, δ_o2


def test_hidden_layers_say_they_reuse_the_delta_above():
    d = doc("sigmoid-222")
    hidden = d.backward[0].groups[1]
    assert "reused" in hidden.note and r"\delta_{o_{1}} \approx 0.138499" in hidden.note


def test_frozen_parameters_are_not_updated():
    d = doc("sigmoid-222")
    b1 = d.update.equations[8]
    assert b1.lhs == "b_{1}" and "frozen" in b1.rows[0].tex and value(b1) == "0.35"
    assert d.setup.frozen == ("b_{1}", "b_{2}")


# -- structure ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["linear-221", "sigmoid-451-batch", "softmax-233", "sigmoid-rows-mse"])
def test_every_parameter_has_a_chain_per_sample_and_an_update(name):
    d, s = doc(name), solve(name)
    names = {p: n.latex for p, n in s.derivation.names.items()}
    lhs = {dE(names[p]) if s.spec.samples == 1 else rf"\frac{{\partial e_{{{n}}}}}{{\partial {names[p]}}}"
           for p in s.network.parameters for n in range(1, s.spec.samples + 1)}
    shown = {eq.lhs for eq in equations(d, "backward")}
    assert lhs <= shown
    assert [eq.lhs for eq in d.update.equations] == [names[p] for p in s.network.parameters]
    if s.spec.samples > 1:
        assert [eq.lhs for eq in d.batch.equations] == [dE(names[p]) for p in s.network.parameters]


def test_batch_gradient_agrees_with_sympy_diff_of_the_whole_batch_loss():
    s = solve("sigmoid-451-batch")
    d = doc("sigmoid-451-batch")
    net = s.network
    w = net.weights[1][0][2]                                  # w2_31 (W2 is stored 5×1), into the output
    total = 0
    for x, y in zip(s.spec.x, s.spec.y):
        e = net.definitions[net.loss]
        for q in reversed(net.order[:-1]):
            e = e.xreplace({q: net.definitions[q]})
        total += e.xreplace({**dict(zip(net.inputs, x)), **dict(zip(net.targets, y))})
    direct = sp.diff(total, w).xreplace(s.training.first.parameters).evalf(30)
    shown = find(d.batch.equations, dE(s.derivation.names[w].latex))
    assert abs(float(value(shown)) - float(direct)) <= 1e-5 * abs(float(direct))      # 6 digits shown
    assert shown.rows[0].tex.startswith(r"\sum_{n=1}^{5}")


def test_wide_layers_fall_back_to_the_delta_form_and_wrap_long_sums():
    s = solve(layers=[2, 5, 5, 1], activation="sigmoid", bias="neuron", x=[[0.5, -0.5]], y=[[1]], seed=3,
              style="indexed")
    d = build(s)
    hidden1 = d.backward[0].groups[2]
    w = s.network.weights[0][0][0]
    eq = find(list(hidden1.equations), dE(s.derivation.names[w].latex))
    assert eq.rows[0].tex == r"\delta^{(1)}_{1} \frac{\partial z^{(1)}_{1}}{\partial w^{(1)}_{11}}"
    delta = hidden1.equations[0]
    assert delta.lhs == r"\delta^{(1)}_{1}" and any(r.relation == "" for r in delta.rows)   # 5 paths wrap
    assert "computed just above" in hidden1.note


def test_sections_in_the_issue_order_in_markdown():
    from derive.text.render import render_solution

    text = render_solution(solve("tanh-231"), "md")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## 1. Setup", "## 2. Notation", "## 3. Forward pass", "## 4. Loss", "## 5. Backward pass",
                        "## 6. General formulas", "## 7. Update", "## 8. Forward pass with the new parameters",
                        "## 9. Verification"]
    assert text.index("### Loss per step") < text.index("## 9. Verification")


def test_notation_lists_every_symbol_with_a_typable_name():
    s = solve("sigmoid-222")
    d = doc("sigmoid-222")
    plain = {row.plain for row in d.notation}
    for sym in s.network.parameters + s.network.inputs + s.network.targets + s.network.order:
        assert s.derivation.names[sym].plain in plain
    for v in s.derivation.backward_order:
        assert s.derivation.names[s.derivation.adjoint[v]].plain in plain
    assert "w1'" in plain and "learning_rate" in plain


def test_history_of_several_steps():
    d = doc("tanh-231")
    h = d.history
    assert [step for step, _ in h.rows] == [0, 1, 2, 3, 4, 5]
    assert h.rows[0][1].tex == d.after.loss.before.tex and h.rows[1][1].tex == d.after.loss.after.tex
    assert len(h.points) == 6
    assert doc("linear-221").history is None


def test_verification_is_computed_and_tiny():
    for name in ("linear-221", "sigmoid-222", "softmax-233"):
        v = doc(name).verification
        assert v.direct is not None and (v.direct.tex == "0" or "10^{-" in v.direct.tex)
        assert "10^{-" in v.finite.tex
        exponent = int(v.finite.tex.split("10^{-")[1].rstrip("}"))
        assert exponent > 30                       # 60-digit central differences with h = 1e-20
    assert doc("linear-221").verification.direct.tex == "0"                   # rational: exact agreement
    assert doc("sigmoid-451-batch").verification.direct is None               # too large to expand


def test_code_kept_for_a_network_of_the_same_definitions_gives_the_same_verification():
    """The finite differences' compiled loss is kept for the next network of the same layers (an exam's variants,
    a document's other formats): another network's numbers through it give what freshly printed code gives."""
    raw = tomllib.loads(example_text("sigmoid-222"))
    other = {**raw, "init": {"seed": 7}}
    _compiled_definitions.cache_clear()
    fresh = verify(solve(other))
    assert _compiled_definitions.cache_info().currsize == 1
    verify(solve(raw))
    assert _compiled_definitions.cache_info().hits == 1
    kept = verify(solve(other))
    assert _compiled_definitions.cache_info().hits == 2
    assert kept == fresh and fresh != verify(solve(raw))


@pytest.mark.parametrize("name", ["relu-231", "sigmoid-222", "softmax-233"])
def test_the_direct_check_finds_a_planted_error_whether_it_evaluates_exactly_or_in_mpmath(name):
    """sympy.diff of the written-out loss is evaluated exactly (ReLU: rational at rational points) or in mpmath
    with its common subexpressions once (e^z); either way a gradient off by 10⁻⁶ shows as that difference."""
    sol = solve(name)
    step = sol.exact_first
    p = sol.network.parameters[-1]
    wrong = replace(step, gradient={**step.gradient, p: step.gradient[p] + sp.Rational(1, 10 ** 6)})
    assert _direct_difference(sol, step, 60) < sp.Rational(1, 10 ** 55)
    found = _direct_difference(sol, wrong, 60)
    if name == "relu-231":
        assert found == sp.Rational(1, 10 ** 6)
    else:
        assert abs(found - sp.Rational(1, 10 ** 6)) < sp.Rational(1, 10 ** 50)


def test_a_saturated_network_is_verified_at_the_digits_its_units_need():
    """softmax-233 with inputs × 10⁴ (found by fuzzing: its Markdown took 21 s, its JSON 2 s). Its sigmoid units
    share about 1,300 digits with 1, so the verification works with 60 more than that, not the engine's 3,840,
    and still agrees with the chain rule to the last of them."""
    raw = tomllib.loads(example_text("softmax-233"))
    raw["data"]["x"] = [["5000", "-10000"]]
    sol = solve(raw)
    with mpmath.workdps(50):       # h3 at z = 0.4·5000 + 0.1·10000 − 0.1: 1 − a = σ(−z) = 1/(1 + e^z)
        shared = mpmath.log10(1 + mpmath.exp(mpmath.mpf("2999.9")))
    v = build(sol).verification
    work = int(v.finite_note.split("computed with ")[1].split(" ")[0])
    assert work == 60 + math.ceil(shared) and 1300 < work < 1400, (work, shared)
    assert f"with {work} significant digits" in v.direct_note
    assert int(v.direct.tex.split("10^{-")[1].rstrip("}")) > work - 5
    assert int(v.finite.tex.split("10^{-")[1].rstrip("}")) > 30


def test_precision_option_changes_the_shown_digits_and_the_stated_policy():
    d = doc("linear-221", 3)
    assert "3 significant digits" in d.rounding
    assert value(d.update.equations[0]) == "0.121" and d.update.equations[0].rows[-1].relation == r"\approx"
    assert value(find(equations(d, "backward"), r"\delta_{o}")) == "-0.809"      # still exact at 3 digits


def test_finite_differences_resolve_a_saturated_units_tiny_gradients():
    """A softmax output at 1 − 1e-45 (QA's case): every gradient is about 1e-43, and ln(o) loses 45
    digits of 60. The differences must be taken at the digits the engine needed, so the largest
    difference reported is far below the gradients, not as large as they are."""
    raw = {"network": {"layers": [1, 2, 2], "activation": ["tanh", "softmax"], "bias": "shared",
                       "loss": "cross_entropy"},
           "data": {"x": [[100], [-0.001]], "y": [[1, 0], [0, 1]]},
           "init": {"W1": [[5], [-7]], "b1": 0.5, "W2": [[300, -400], [-500, 600]], "b2": 1}}
    s = solve(raw)
    # (b2's true gradient is 0: a softmax is blind to one constant added to all its inputs)
    smallest = min(abs(s.training.first.gradient[w]) for row in s.network.weights[0] + s.network.weights[1]
                   for w in row)
    assert 1e-50 < smallest < 1e-40
    finite = build(s).verification.finite
    assert float(finite.plain) < 1e-20 * float(smallest), finite.plain


@pytest.mark.parametrize("name", ["relu-231", "tanh-231", "softmax-233", "sigmoid-451-batch"])
def test_negative_numbers_are_bracketed_once(name):
    """+ (−0.1), not + −0.1; ReLU(−0.8), not ReLU((−0.8)): in every substituted line."""
    from derive.text.render import render_solution

    text = render_solution(solve(name), "md")
    assert "+ -" not in text and r"\left(\left(-" not in text


def test_a_sigmoid_output_under_bce_shows_its_delta_as_o_minus_y_over_n():
    """σ′ = o(1 − o) cancels the 1/(o(1 − o)) of the log-loss: δ_o = (o − y)/N, here N = 2, and the
    numbers go into that short form. Checked against the engine's δ (finite-difference tested)."""
    from derive.text.render import render_solution

    s = solve("bce-221")
    text = render_solution(s, "md", doc=build(s, view=FULL))
    assert text.count(r"&= \frac{o - y}{2} \\") == 2             # both samples worked in full
    assert render_solution(s, "md").count(r"&= \frac{o - y}{2} \\") == 1  # short: sample 1, the rest in a table
    for env in s.training.first.samples:
        o, y = env[s.symbol("o")], env[s.symbol("y")]
        assert abs((o - y) / 2 - env[s.symbol("delta_o")]) < 1e-50
    # where nothing cancels (½(y − o)² with a sigmoid) the chain stays as it is
    assert r"\frac{o" not in render_solution(solve("sigmoid-451-batch"), "md").split("## 6.")[0]


def test_several_steps_end_with_the_final_parameters_and_outputs():
    """After N steps the document shows every parameter after step N and the outputs they give; the outputs
    are checked by an independent forward pass (tests/test_properties.py's mpmath one) at the JSON's final
    parameters, and the loss they give is the history's last one."""
    import mpmath

    from derive.model.spec import example_text
    from tests.test_properties import forward

    s = solve("tanh-231")
    history = build(s).history
    final = s.json()["final"]
    raw = tomllib.loads(example_text("tanh-231"))
    raw["network"].setdefault("convention", "column")
    raw["network"].setdefault("bias", s.spec.bias.uniform)
    with mpmath.workdps(30):
        params = {k: ([[mpmath.mpf(repr(v)) for v in row] for row in value] if isinstance(value[0], list)
                      else [mpmath.mpf(repr(v)) for v in value]) if isinstance(value, list) else mpmath.mpf(repr(value))
                  for k, value in final.items()}
        loss, outputs, _ = forward(raw, params)
    shown = [float(c.after.plain) for c in history.outputs]
    assert shown == pytest.approx([float(o) for row in outputs for o in row], rel=1e-5)
    assert float(history.final.plain) == pytest.approx(float(loss), rel=1e-5)
    assert len(history.parameters) == len(s.network.parameters)
    from derive.text.render import render_solution

    assert "### After the last step" in render_solution(s, "md")


def test_a_large_network_is_checked_one_by_one_and_along_random_directions():
    """Beyond 32 parameters the finite differences take 32 of them one by one and 4 random directions that move
    every parameter: a gradient wrong in one component outside the 32 still shows, in ∇E·v."""
    from derive.derived import verification

    spec = {"network": {"layers": [8, 8, 2], "activation": "sigmoid", "bias": "neuron", "loss": "half_sse"},
            "data": {"x": [[0.1 * k - 0.3 for k in range(8)]], "y": [[0.2, 0.7]]}, "init": {"seed": 4}}
    s = solve(spec)
    checked = verification.verify(s)
    assert "for 32 of the 90 parameters one by one" in checked.finite_note and "4 random directions" in checked.finite_note
    assert float(checked.finite.plain) < 1e-30
    singles, _ = verification._probes(s.network.parameters)
    outside = next(p for p in s.network.parameters if p not in singles)
    s.exact_first.gradient[outside] += sp.Rational(1, 1000)     # a wrong component none of the 32 is
    assert float(verification.verify(s).finite.plain) > 1e-5


@pytest.mark.parametrize("name, above", [("linear-221", 1), ("sigmoid-451-batch", 1), ("sigmoid-222", 2),
                                         ("relu-231", 1), ("softmax-233", 3)])
def test_the_several_paths_sentence_stands_only_where_a_unit_feeds_several(name, above):
    """A hidden layer's note says its units collect a term per path only where the layer above has several units:
    in a 2-2-1 network each hidden unit feeds the one output, and the sentence would describe nothing there."""
    notes = [g.note for part in doc(name).backward for g in part.groups if g.title.startswith("Hidden")]
    assert notes
    for note in notes:
        assert ("term per path" in note) == (above > 1), note
        assert above == 1 or f"feeds the {above} units of layer" in note


# -- the transposed convention: the matrices printed as the third seed stores them ------------------------

def test_the_third_seeds_printed_matrices_have_the_stored_shapes():
    """W^(1) 4×5 and W^(2) 5×1 as the spec and the JSON hold them: in the setup, in the update in matrix form,
    and in every shape the matrix form states (W^(l)ᵀ the transpose, ∂E/∂W^(l) the stored shape)."""
    s = solve("sigmoid-451-batch")
    stored = {f"W{l}": (len(M), len(M[0])) for l, M in ((1, s.json()["parameters"]["W1"]), (2, s.json()["parameters"]["W2"]))}
    assert stored == {"W1": (4, 5), "W2": (5, 1)}
    text = render_solution(s, "md", doc=build(s, view=View(detail="full")))
    # the example names its matrices as the seed does ([notation].symbols): W_{ih}, W_{ho}
    names = {s.network.notation.matrix("W", l).latex: str(l) for l in (1, 2)}
    assert names == {"W_{ih}": "1", "W_{ho}": "2"}
    written = "|".join(re.escape(n) for n in names)
    shapes = re.findall(rf"\$(({written})(\^{{\\mathsf{{T}}}})?|\\frac{{\\partial E}}{{\\partial ({written})}})\$: "
                        r"\$(\d+) \\times (\d+)\$", text)
    seen = set()
    for _, w, transposed, dw, rows, cols in shapes:
        l, shape = names[w or dw], (int(rows), int(cols))
        want = stored[f"W{l}"]
        assert shape == (want[::-1] if transposed else want), (l, transposed, shape)
        seen.add((l, bool(transposed), bool(dw)))
    assert {("1", True, False), ("2", True, False), ("1", False, True), ("2", False, True), ("2", False, False)} <= seen
    for l, (rows, cols) in ((1, stored["W1"]), (2, stored["W2"])):
        setup = next(eq for eq in build(s).setup.matrices if eq.lhs == s.network.notation.matrix("W", l).latex)
        for row in setup.rows:          # the symbols, then the numbers
            assert row.tex.count(r"\\") == rows - 1 and row.tex.split(r"\\")[0].count("&") == cols - 1, row.tex
    update = render_solution(s, "md").split("## 7.")[1]
    assert r"W_{ih} &\leftarrow W_{ih} - \eta\, \frac{\partial E}{\partial W_{ih}}" in update



# -- [notation].symbols: the seeds' documents in their own names --------------------------------------------

def _without_symbols(name: str) -> dict:
    raw = tomllib.loads(example_text(name))
    del raw["notation"]["symbols"]
    return raw


def _matrix_part(text: str) -> str:
    """The full Markdown's matrix form: from its heading to the formulas for any depth."""
    return text.split("### Matrix form")[1].split("###")[0]


@pytest.mark.parametrize("name, seeds, derives, renamed", [
    ("sigmoid-451-batch", [r"Z_{1} &= W_{ih}^{\mathsf{T}} X + \mathbf{1}_{5} b_{ih}", r"h_{1} &= \sigma\left(Z_{1}\right)",
                           r"O &= \sigma\left(Z_{2}\right)", r"\frac{\partial E}{\partial W_{ho}} &= h_{1}"],
     ["A^{(2)}", "A^{(1)}", "W^{(1)}", "W^{(2)}", "b^{(1)}", "Z^{(1)}", r"\Delta^{(1)}"], ["A1", "A2", "W1", "W2"]),
    ("sigmoid-rows-mse", [r"Z_{1} &= X W_{1} + \mathbf{1}_{2} B_{1}", r"H_{1} &= \sigma\left(Z_{1}\right)",
                          r"Y &= \sigma\left(Z_{2}\right)", r"\frac{\partial E}{\partial Y} &= Y - T",
                          r"\frac{\partial E}{\partial W_{2}} &= H_{1}^{\mathsf{T}} \Delta_{2}"],
     ["A^{(2)}", "A^{(1)}", "W^{(1)}", r"\Delta^{(2)}", "Z^{(2)}"], ["A1", "b1", "b2"]),
])
def test_the_seeds_matrix_form_and_notation_table_use_their_names(name, seeds, derives, renamed):
    s = solve(name)
    text = render_solution(s, "md", doc=build(s, view=View(detail="full")))
    matrix = _matrix_part(text)
    for line in seeds:
        assert line in matrix, line
    for default in derives:
        assert default not in matrix, default
    table = text.split("## 2.")[1].split("## 3.")[0]
    names = dict(s.network.notation.symbols)
    for key in renamed:
        assert f"| `{names[key]}` |" in table, key
        assert f"| `{key}` |" not in table, key


@pytest.mark.parametrize("name", ["sigmoid-451-batch", "sigmoid-rows-mse"])
def test_the_symbols_change_no_number(name):
    """The JSON, and every number of the full document, are those of the same spec in derive's own names."""
    ours, theirs = solve(name), solve(_without_symbols(name))
    assert ours.json() == theirs.json()
    numbers = re.compile(r"-?\d+\.\d+")
    for detail in ("short", "full"):
        view = View(detail=detail)
        a = render_solution(ours, "md", doc=build(ours, view=view))
        b = render_solution(theirs, "md", doc=build(theirs, view=view))
        assert numbers.findall(a) == numbers.findall(b)
        assert a != b


def test_the_update_in_matrix_form_uses_the_symbols():
    update = render_solution(solve("sigmoid-rows-mse"), "md").split("## 7.")[1]
    assert r"W_{1} &\leftarrow W_{1} - \eta\, \frac{\partial E}{\partial W_{1}}" in update
    assert r"B_{1} &\leftarrow B_{1} - \eta\, \frac{\partial E}{\partial B_{1}}" in update
    assert "W^{(1)} &" not in update


def test_a_rate_per_layer_is_named_by_the_symbols():
    """[train].learning_rate per layer: η_{W_ih} where the seed writes W_ih, η_{W^{(2)}} where it gives no symbol,
    in the setup, the update and the exam sheet's training sentence alike."""
    raw = tomllib.loads(example_text("sigmoid-451-batch"))
    raw["train"]["learning_rate"] = {"W1": 0.25, "W2": 0.5, "b1": 0.125, "b2": 0.75}
    del raw["notation"]["symbols"]["W2"]
    s = solve(raw)
    text = render_solution(s, "md")
    assert r"\eta_{W_{ih}} = 0.25" in text and r"\eta_{b_{ih}} = 0.125" in text
    assert r"\eta_{W^{(2)}} = 0.5" in text and r"\eta_{W^{(1)}}" not in text
    assert r"W_{ih} &\leftarrow W_{ih} - \eta_{W_{ih}}" in text
    rates = training_text(s)[1]
    tex, plain = rates.latex, rates.plain
    assert r"\eta_{W_{ih}} = 0.25" in tex and "eta_W_ih = 0.25" in plain and "eta_W2 = 0.5" in plain


def test_a_matrix_that_plain_arithmetic_cannot_evaluate_is_printed_without_values():
    """bce with o = 1 − 10^−16860 (w5 = 500,000): ∂E/∂A = (A − Y)/(A(1 − A)) is 1/0 in plain matrix arithmetic at
    every precision, where the chain rule's saturation-safe form gives a number. The full document printed a
    traceback (found by fuzzing); it now writes the equation without values and says why."""
    raw = tomllib.loads(example_text("bce-221"))
    raw["init"]["W2"] = [[500000.0, -400000.0]]
    raw["data"]["y"] = [[1e-06], [0.0]]
    s = solve(raw)
    text = render_solution(s, "md", doc=build(s, view=View(detail="full")))
    upstream = text.split("Derivative of the loss, entry by entry")[1].split("Shapes:")[0]
    assert "(no values: a saturated unit makes an entry infinite or 0/0" in upstream
    assert upstream.count("&=") == 1 and r"\begin{bmatrix}" not in upstream       # the formula alone
    assert "zoo" not in text and "nan" not in text.lower().replace("nano", "")


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_finite_differences_compute_each_unit_as_its_definition(activation):
    """The verification computes a net input as one dot product and an activation of one net input by its mpmath
    form, printing no code for them: at random 60-digit values each gives what SymPy's lambdify of the unit's own
    definition gives (to the last digits), for every activation of the registry (softmax and the loss: printed)."""
    output = "softmax" if activation == "softmax" else "sigmoid"
    hidden = "sigmoid" if activation == "softmax" else activation
    raw = {"network": {"layers": [3, 2, 2], "activation": [hidden, output], "bias": "neuron",
                       "loss": "cross_entropy" if output == "softmax" else "mse"},
           "data": {"x": [[0.5, -0.25, 1]], "y": [[1, 0]]}, "init": {"seed": 5}}
    net = solve(raw).network
    rng = random.Random(activation)
    direct = 0
    with mpmath.workdps(60):
        for s in net.order:
            expr = net.definitions[s]
            found = verification._direct(expr)
            if found is None:
                continue
            direct += 1
            args, f = found
            values = {a: mpmath.mpf(rng.uniform(-3, 3)) for a in expr.free_symbols}
            modules = [{name: form.mp for name, form in NUMERIC.items()}, "mpmath"]
            reference = sp.lambdify(sorted(values, key=str), expr, modules=modules)(
                *[values[a] for a in sorted(values, key=str)])
            assert abs(f(*[values[a] for a in args]) - reference) <= mpmath.mpf(10) ** -55 * max(1, abs(reference))
    assert direct >= 4          # the net inputs of both layers, at least
