"""Rendering: KaTeX-strict Markdown, LaTeX that compiles, the gallery, escaping, templates, determinism.

KaTeX (node + the katex npm package) and TeX (pdflatex, latexmk) are required in CI (CI=true):
there a missing tool fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import functools
import html
import math
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.dom.minidom
from pathlib import Path

import pytest

from derive.cli import main as cli
from derive.derived.solution import solve
from derive.errors import RenderError
from derive.model.examples import example_text
from derive.model.spec import example_names
from derive.numeric.rounding import number
from derive.text.render import build_pdf, document, render_figures, render_solution, write_solution

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "output"
REGENERATE = "python -m derive.text.gallery --gallery"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EXAMPLES = example_names()

NASTY_TITLE = r"\input{/etc/passwd}"
NASTY_TEXT = r"$x$ & {}_%#~^\ *bold* <b>html</b> | `code` \def\x{1} \end{document} # heading"

# Specs beyond the built-in examples, so that every activation and loss reaches both formats.
EXTRA = {
    "every-activation": {
        "title": "Leaky ReLU, softplus and a sigmoid output with binary cross-entropy",
        "network": {"layers": [2, 2, 2, 1], "activation": ["leaky_relu", "softplus", "sigmoid"],
                    "bias": "neuron", "loss": "bce"},
        "data": {"x": [[0.5, -1.0], [-0.3, 0.8]], "y": [[1], [0]]},
        "init": {"seed": 7}, "train": {"learning_rate": 0.5, "steps": 3}, "notation": {"style": "indexed"}},
    "sse-quadratic": {
        "network": {"layers": [1, 2, 2], "activation": ["relu", "tanh"], "bias": "shared", "loss": "quadratic"},
        "data": {"x": [[2.0], [-1.0], [0.5]], "y": [[0.1, -0.2], [0.3, 0.0], [0.0, 0.5]]},
        "init": {"seed": 3}, "train": {"learning_rate": 0.1, "steps": 40}},
    # the next updates worked out: mini-batches of 2 with momentum and weight decay, a rate per layer
    "mini-batches-momentum": {
        "network": {"layers": [2, 2, 1], "activation": ["tanh", "sigmoid"], "bias": "neuron", "loss": "bce"},
        "data": {"x": [[0.5, -1.0], [-0.3, 0.8], [1.0, 0.2], [0.1, 0.1], [-1.0, -0.4]],
                 "y": [[1], [0], [1], [0], [1]]},
        "init": {"seed": 5}, "train": {"learning_rate": {"W1": 0.5, "W2": 0.2}, "steps": 4, "batch": 2,
                                       "momentum": 0.9, "weight_decay": 0.01}},
    "escaping": {
        "title": NASTY_TITLE, "description": NASTY_TEXT,
        "network": {"layers": [1, 1], "activation": "linear", "loss": "sse"},
        "data": {"x": [[1]], "y": [[2]]}, "init": {"W1": [[0.5]]}},
}


def need(available: bool, what: str) -> None:
    """Fail in CI, skip elsewhere, when a tool the test needs is missing."""
    if not available:
        if CI:
            pytest.fail(f"{what} is missing; .ci/run must install it")
        pytest.skip(f"{what} is not installed")


def katex_available() -> bool:
    if not shutil.which("node"):
        return False
    probe = ("try{require.resolve('katex')}catch(e){require(require('path').join("
             "require('child_process').execSync('npm root -g').toString().trim(),'katex'))}")
    return subprocess.run(["node", "-e", probe], capture_output=True).returncode == 0


def spec_of(name: str):
    return EXTRA[name] if name in EXTRA else name


@functools.cache
def doc(name: str):
    return document(solve(spec_of(name)))


@functools.cache
def rendered(name: str, fmt: str) -> str:
    return render_solution(solve(spec_of(name)), fmt, doc=doc(name))


# -- KaTeX: every formula of every Markdown document parses in strict mode ---------------------------

def test_every_formula_of_every_markdown_solution_parses_in_katex_strict_mode(tmp_path):
    need(katex_available(), "node with the katex npm package (npm install -g katex)")
    files = []
    for name in EXAMPLES + list(EXTRA):
        path = tmp_path / f"{name}.md"
        path.write_text(rendered(name, "md"), encoding="utf-8")
        files.append(str(path))
    result = subprocess.run(["node", str(ROOT / "tests" / "katex_check.js"), *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " 0 failed" in result.stdout


def test_the_katex_checker_catches_bad_math(tmp_path):
    need(katex_available(), "node with the katex npm package (npm install -g katex)")
    bad = tmp_path / "bad.md"
    bad.write_text("ok $x_1$ and \\$5, `$not math$`\n\n$$\n\\frac{1}{\n$$\n\nand $a^b^c$ here\n", encoding="utf-8")
    result = subprocess.run(["node", str(ROOT / "tests" / "katex_check.js"), str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "3 formulas checked, 2 failed" in result.stdout       # the escaped \$ and the code span are not math


# -- LaTeX: every document compiles with pdflatex ------------------------------------------------------

def tex_available() -> bool:
    return bool(shutil.which("pdflatex"))


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES + list(EXTRA))
def test_latex_solution_compiles_with_pdflatex(name):
    need(tex_available(), "pdflatex (texlive-latex-extra)")
    pdf = build_pdf(rendered(name, "tex"), name)
    assert pdf.startswith(b"%PDF")


# -- the gallery ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("fmt", ["md", "html", "tex"])
def test_gallery_is_what_derive_solve_prints(name, fmt):
    path = GALLERY / f"{name}.{fmt}"
    assert path.is_file(), f"{path} is missing; regenerate the gallery with: {REGENERATE}"
    assert path.read_text(encoding="utf-8") == rendered(name, fmt), \
        f"{path} is out of date; regenerate the gallery with: {REGENERATE}"


def test_gallery_has_nothing_but_the_examples():
    expected = {f"{n}.{ext}" for n in EXAMPLES for ext in ("md", "html", "tex", "pdf")}
    extra = {p.name for p in GALLERY.iterdir()} - expected
    assert not extra, f"output/ holds files no example produces: {sorted(extra)}"


def test_cli_prints_exactly_the_rendered_document(capsys):
    for fmt in ("md", "tex"):
        assert cli(["solve", "sigmoid-222", "--format", fmt]) == 0
        assert capsys.readouterr().out == rendered("sigmoid-222", fmt)


# -- bad input: user text is text, broken templates are errors ---------------------------------------

def test_user_text_is_escaped_in_markdown():
    text = rendered("escaping", "md")
    assert text.startswith("# \\\\input\\{/etc/passwd\\}\n")
    line = text.splitlines()[2]
    assert line.startswith(r"\$x\$ \& \{\}\_%\#\~^\\ \*bold\* \<b\>html\</b\> \| \`code\`")
    assert "<b>" not in text and "$x$" not in text


def test_user_text_is_escaped_in_latex_and_never_runs():
    text = rendered("escaping", "tex")
    assert r"\title{\textbackslash{}input\{/etc/passwd\}}" in text
    assert r"\$x\$ \& \{\}\_\%\#\textasciitilde{}\textasciicircum{}\textbackslash{}" in text
    assert "\\input{" not in text and "\\def\\x" not in text
    assert text.count(r"\end{document}") == 1


@pytest.mark.slow
def test_escaped_title_compiles_without_reading_the_file(tmp_path):
    need(tex_available(), "pdflatex (texlive-latex-extra)")
    (tmp_path / "e.tex").write_text(rendered("escaping", "tex"), encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "e.tex"], cwd=tmp_path,
                         capture_output=True, stdin=subprocess.DEVNULL)
    assert run.returncode == 0
    log = (tmp_path / "e.log").read_text(encoding="utf-8", errors="replace")
    assert "/etc/passwd" not in log.replace("\n", "")          # TeX opened no such file


def test_undefined_template_variable_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "solution.md.j2").write_text("# {{ doc.title }}\n{{ no_such_thing }}\n", encoding="utf-8")
    with pytest.raises(RenderError) as err:
        render_solution(solve("linear-221"), "md", template_dir=tmp_path)
    assert "no_such_thing" in str(err.value) and "\n" not in str(err.value)
    assert cli(["solve", "linear-221", "--template-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("derive: error: template") and captured.err.count("\n") == 1


def test_missing_attribute_and_template_syntax_errors_are_render_errors(tmp_path):
    (tmp_path / "solution.md.j2").write_text("{{ doc.setup.nonexistent }}", encoding="utf-8")
    with pytest.raises(RenderError, match="nonexistent"):
        render_solution(solve("linear-221"), "md", template_dir=tmp_path)
    (tmp_path / "solution.md.j2").write_text("line one\n{% if %}\n", encoding="utf-8")
    with pytest.raises(RenderError, match=r"solution\.md\.j2:2"):
        render_solution(solve("linear-221"), "md", template_dir=tmp_path)


def test_templates_run_sandboxed(tmp_path):
    (tmp_path / "solution.md.j2").write_text("{{ doc.__class__.__init__.__globals__ }}", encoding="utf-8")
    with pytest.raises(RenderError):
        render_solution(solve("linear-221"), "md", template_dir=tmp_path)


def test_missing_template_dir_is_an_error():
    with pytest.raises(RenderError, match="no such folder"):
        render_solution(solve("linear-221"), "md", template_dir="/nonexistent/templates")


# -- overriding templates ----------------------------------------------------------------------------

def test_template_dir_overrides_one_block_of_the_markdown(tmp_path):
    (tmp_path / "solution.md.j2").write_text(
        '{% extends "default/solution.md.j2" %}\n'
        "{% block verification %}## 9. Checked by hand\n\nLoss {{ doc.after.loss.before.tex }}.\n{% endblock %}\n",
        encoding="utf-8")
    text = render_solution(solve("linear-221"), "md", template_dir=tmp_path)
    original = rendered("linear-221", "md")
    assert text.endswith("## 9. Checked by hand\n\nLoss 0.3272405.\n")
    assert text[:original.index("## 9.")] == original[:original.index("## 9.")]


def test_the_readmes_one_line_title_block_keeps_the_setup_heading_on_its_own_line(tmp_path):
    (tmp_path / "solution.md.j2").write_text('{% extends "default/solution.md.j2" %}\n'
                                             "{% block title %}# Homework 3, problem 2{% endblock %}\n",
                                             encoding="utf-8")
    text = render_solution(solve("linear-221"), "md", template_dir=tmp_path)
    lines = text.splitlines()
    assert lines[0] == "# Homework 3, problem 2" and "## 1. Setup" in lines      # each heading on its own line
    assert lines[1].startswith("The network of hmkcode") or lines[2].startswith("The network of hmkcode")


def test_template_dir_overrides_one_block_of_the_latex(tmp_path):
    (tmp_path / "solution.tex.j2").write_text(
        '((* extends "default/solution.tex.j2" *))\n((* block title *))\\section*{((( doc.title | text )))}\n'
        "((* endblock *))\n", encoding="utf-8")
    text = render_solution(solve("linear-221"), "tex", template_dir=tmp_path)
    assert r"\section*{A 2-2-1 linear network without biases}" in text and r"\maketitle" not in text
    assert text.endswith("\\end{document}\n")


# -- writing files -----------------------------------------------------------------------------------

def test_markdown_with_out_writes_svg_figures_beside_it(tmp_path):
    written = write_solution(solve("tanh-231"), "md", tmp_path, "tanh-231")
    assert sorted(p.name for p in written) == ["tanh-231-loss.svg", "tanh-231-network.svg", "tanh-231.md"]
    text = (tmp_path / "tanh-231.md").read_text(encoding="utf-8")
    assert "](tanh-231-network.svg)" in text and "](tanh-231-loss.svg)" in text and "```mermaid" not in text
    for svg in ("tanh-231-network.svg", "tanh-231-loss.svg"):
        root = xml.dom.minidom.parse(str(tmp_path / svg)).documentElement
        assert root.tagName == "svg"
    network = (tmp_path / "tanh-231-network.svg").read_text(encoding="utf-8")
    assert network.count("<circle") == 6 and "w1_11" not in network
    assert '<tspan dy="-4" font-size="75%">(1)</tspan><tspan dy="7" font-size="75%">11</tspan>' \
           '<tspan dy="-3"> = 0.2</tspan>' in network         # w⁽¹⁾₁₁ = 0.2, as the document writes it


def label_boxes(svg: str) -> list[list[tuple[float, float]]]:
    """Every edge label of a network SVG as the corners of its rotated box, measured from the SVG alone:
    10 px type, 5.6 px an average character (75 % in a sub- or superscript); from the top of a run raised
    4 px (its 7.5 px type's ascent, 0.76 em) to the bottom of one lowered 3 px (its descent, 0.24 em)."""
    boxes = []
    for m in re.finditer(r'<text x="([-\d.]+)" y="([-\d.]+)" transform="rotate\(([-\d.]+) [^)]*\)" '
                         r'text-anchor="middle" dy="(-?[\d.]+)"[^>]*>(.*?)</text>', svg):
        x, y, angle, dy, body = float(m[1]), float(m[2]), math.radians(float(m[3])), float(m[4]), m[5]
        runs = re.findall(r'<tspan dy="(-?\d+)"( font-size="75%")?>([^<]*)</tspan>', body)
        width = sum(len(html.unescape(t)) * 5.6 * (0.75 if small else 1) for _, small, t in runs)
        top, bottom = dy - 4 - 0.76 * 7.5, dy + 3 + 0.24 * 7.5     # relative to the edge, across it (y down)
        u, n = (math.cos(angle), math.sin(angle)), (-math.sin(angle), math.cos(angle))
        boxes.append([(x + u[0] * a + n[0] * b, y + u[1] * a + n[1] * b)
                      for a, b in ((-width / 2, top), (width / 2, top), (width / 2, bottom), (-width / 2, bottom))])
    return boxes


def overlap(p: list[tuple[float, float]], q: list[tuple[float, float]]) -> bool:
    """Whether two convex polygons overlap (separating axis theorem; touching is not overlapping)."""
    for poly in (p, q):
        for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
            axis = (y1 - y2, x2 - x1)
            a = [axis[0] * x + axis[1] * y for x, y in p]
            b = [axis[0] * x + axis[1] * y for x, y in q]
            if max(a) <= min(b) + 1e-9 or max(b) <= min(a) + 1e-9:
                return False
    return True


def circles(svg: str) -> list[tuple[float, float, float]]:
    return [(float(x), float(y), float(r)) for x, y, r in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="(\d+)"', svg)]


@pytest.mark.parametrize("layers", [None, [2, 3, 3], [3, 6, 2], [2, 6, 6, 2], [4, 5, 1], [6, 6]])
def test_no_diagram_label_covers_another_or_a_unit(layers):
    """Every built-in example, and networks up to 6 units a layer: the labels' boxes, read back from the SVG,
    overlap neither each other nor a unit's circle; the layers move apart for it (up to 480 px)."""
    specs = [solve(name) for name in EXAMPLES] if layers is None else [solve({
        "network": {"layers": layers, "activation": "sigmoid", "bias": "neuron", "loss": "mse"},
        "data": {"x": [[0.5] * layers[0]], "y": [[0.5] * layers[-1]]}, "init": {"seed": 1}})]
    for sol in specs:
        doc = document(sol)
        assert doc.setup.diagram.labelled, sol.spec.title
        svg = render_figures(doc, "x")["x-network.svg"]
        boxes = label_boxes(svg)
        assert len(boxes) == sum(link.shown for link in doc.setup.diagram.links)
        for i, p in enumerate(boxes):
            assert not any(overlap(p, q) for q in boxes[i + 1:]), (sol.spec.title, i)
            for cx, cy, r in circles(svg):
                square = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
                assert not overlap(p, square) or min(math.dist((cx, cy), c) for c in p) > r, (sol.spec.title, i)


TEXT_WIDTH = 483.7      # pt: the A4 page's text width at 2 cm margins


def tikz_diagram(tex: str) -> tuple[float, list[list[tuple[float, float]]], list[tuple[float, float, float]], list]:
    """The TikZ network diagram read back at its printed size, in points (y up): its labels' type size, each
    label's box (7 pt type: 0.6 em a character, 70 % in a script, a minus two; from its edge, which its node
    stands on, to 1.5 em above it; TeX's own boxes of 6-6-6's and 2-3-3's labels are 84 to 99 % of these wide
    and at most 1.3 em high), the units as circles and the edges as centre-to-centre segments with their label."""
    picture = tex[tex.index(r"\begin{tikzpicture}"):tex.index(r"\end{tikzpicture}")]
    sx, sy = (float(v) for v in re.search(r"x=([\d.]+)pt, y=([\d.]+)pt", picture).groups())
    size = float(re.search(r"unit/.style=\{[^}]*minimum size=([\d.]+)pt", picture)[1])
    font = float(re.search(r"weight/.style=\{font=\\fontsize\{([\d.]+)\}", picture)[1])
    at = {m[2]: (float(m[3]) * sx, float(m[4]) * sy, m[1])
          for m in re.finditer(r"\\node\[(unit|bias)\] \((\w+)\) at \(([-\d.]+), ([-\d.]+)\)", picture)}
    units = [(x, y, size / 2) for x, y, kind in at.values() if kind == "unit"]
    square = float(re.search(r"bias/.style=\{[^}]*minimum size=([\d.]+)pt", picture)[1])
    edges = [(at[a][:2], at[b][:2]) for a, b in re.findall(r"\\draw\[edge\] \((\w+)\) -- \((\w+)\);", picture)]
    drawn = [_clipped(a, b, (square if at_a[2] == "bias" else size) / 2, size / 2)
             for (a, b), at_a in zip(edges, (at[m] for m, _ in re.findall(
                 r"\\draw\[edge\] \((\w+)\) -- \((\w+)\);", picture)))]
    boxes, own = [], []
    for m in re.finditer(r"\\path \((\w+)\.center\) -- node\[weight, above, pos=([\d.]+)\] \{\$(.*?)\$\} \((\w+)\.center\);",
                         picture):
        (x1, y1), (x2, y2), t = at[m[1]][:2], at[m[4]][:2], float(m[2])
        name, value = m[3].split(" = ")
        runs = re.findall(r"[_^]\{([^{}]*)\}|([^_^{}\\]+)", name)
        chars = sum(0.7 * len(script) or len(line) for script, line in runs) + 3 + len(value) + value.count("-")
        half, high = chars * 0.6 * font / 2, 1.5 * font
        length = math.dist((x1, y1), (x2, y2))
        u = ((x2 - x1) / length, (y2 - y1) / length)
        u = u if u[0] >= 0 else (-u[0], -u[1])          # sloped: the text reads left to right
        n = (-u[1], u[0])
        cx, cy = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
        boxes.append([(cx + u[0] * a + n[0] * b, cy + u[1] * a + n[1] * b)
                      for a, b in ((-half, 0), (half, 0), (half, high), (-half, high))])
        own.append(((x1, y1), (x2, y2)))
    assert picture.rindex(r"\draw[edge]") < picture.index(r"\path ") if boxes else True     # edges under labels
    return font, boxes, units, [(d, [i for i, o in enumerate(own) if o == e]) for e, d in zip(edges, drawn)]


def _clipped(a: tuple[float, float], b: tuple[float, float], ra: float, rb: float) -> tuple:
    """An edge as drawn: from its source's border to its target's (TikZ between named nodes)."""
    length = math.dist(a, b)
    u = ((b[0] - a[0]) / length, (b[1] - a[1]) / length)
    return (a[0] + u[0] * ra, a[1] + u[1] * ra), (b[0] - u[0] * rb, b[1] - u[1] * rb)


def printed_specs(layers):
    """The built-in examples, or one network of these layers (shared biases: a label across each layer)."""
    if layers is None:
        return [solve(name) for name in EXAMPLES]
    return [solve({"network": {"layers": layers, "activation": "sigmoid", "bias": "shared", "loss": "mse"},
                   "data": {"x": [[0.5] * layers[0]], "y": [[0.5] * layers[-1]]}, "init": {"seed": 1}})]


# where every label is clear of every edge at print by this estimate too (TeX's own boxes: 2-3-3 as well); the others
# need the units' rows further apart than layout.PRINT_DY for that, and cross an edge on a white ground over it
CLEAR_OF_EDGES = set(EXAMPLES) - {"sigmoid-451-batch"}


def test_the_printed_diagram_is_laid_out_for_latex_alone():
    """Markdown and HTML never draw the page's layout, so they never search for it (a tenth of a wide network's
    time); LaTeX asks for it, and gets the layout a fresh document makes."""
    sol = solve("sigmoid-222")
    doc = document(sol)
    render_solution(sol, "md", doc=doc)
    render_solution(sol, "html", doc=doc)
    assert "page" not in vars(doc.setup.diagram)
    render_solution(sol, "tex", doc=doc)
    assert vars(doc.setup.diagram)["page"] == document(sol).setup.diagram.page
    assert doc.setup.diagram.page.labelled == "every"


@pytest.mark.parametrize("layers", [None, [2, 3, 3], [3, 6, 2], [2, 6, 6, 2], [4, 5, 1], [6, 6, 6]])
def test_no_printed_diagram_label_covers_another_or_a_unit(layers):
    """The PDF's diagram at its printed size (issue 9): labels of 7 pt at the least, their boxes read back from the
    TikZ overlapping neither each other nor a unit; the picture within the text width; every edge drawn before
    the labels (none across a label's text); up to 6 units a layer every edge labelled, beyond (2-6-6-2 on the
    page's width) the edges into each layer's first unit, as the text says."""
    for name, sol in zip(EXAMPLES if layers is None else ["-".join(map(str, layers))], printed_specs(layers)):
        tex = render_solution(sol, "tex")
        font, boxes, units, edges = tikz_diagram(tex)
        page = document(sol).setup.diagram.page
        assert font >= 7 and len(boxes) == sum(t is not None for t in page.positions), name
        assert page.labelled == ("first" if layers == [2, 6, 6, 2] else "every"), name
        assert (page.labelled == "first") == ("only the edges into the first unit" in tex), name
        assert max(x + r for x, _, r in units) - min(x - r for x, _, r in units) <= TEXT_WIDTH, name
        for i, p in enumerate(boxes):
            assert not any(overlap(p, q) for q in boxes[i + 1:]), (name, i)
            for cx, cy, r in units:
                square = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
                assert not overlap(p, square) or min(math.dist((cx, cy), c) for c in p) > r, (name, i)
            if name in CLEAR_OF_EDGES:          # the text, not its node's 0.5 pt white margin (inner sep)
                cx, cy = sum(x for x, _ in p) / 4, sum(y for _, y in p) / 4
                p = [(x + (cx - x) * 0.5 / math.dist((x, y), (cx, cy)), y + (cy - y) * 0.5 / math.dist((x, y), (cx, cy)))
                     for x, y in p]
                thin = [[a, b, (b[0] + 1e-3, b[1] + 1e-3), (a[0] + 1e-3, a[1] + 1e-3)] for (a, b), mine in edges
                        if i not in mine]
                assert not any(overlap(p, t) for t in thin), (name, i)


def test_markdown_on_stdout_draws_with_mermaid():
    text = rendered("tanh-231", "md")
    assert "```mermaid\nflowchart LR" in text and "```mermaid\nxychart-beta" in text
    assert '-->|"w1_11 = 0.2"|' in text


def test_nothing_is_written_when_rendering_fails(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "solution.md.j2").write_text("{{ missing }}", encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(RenderError):
        write_solution(solve("tanh-231"), "md", out, "tanh-231", template_dir=tmp_path / "t")
    assert not out.exists() or not any(out.iterdir())


def test_pdf_without_tex_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr("derive.text.render.shutil.which", lambda name: None)
    with pytest.raises(RenderError) as err:
        write_solution(solve("linear-221"), "pdf", tmp_path, "linear-221")
    assert "texlive-latex-extra" in str(err.value) and "latexmk" in str(err.value)
    assert not any(tmp_path.iterdir())


def test_pdf_needs_out(capsys):
    assert cli(["solve", "linear-221", "--format", "pdf"]) == 1
    assert "--out" in capsys.readouterr().err


@pytest.mark.slow
def test_pdf_is_built_into_out(tmp_path):
    need(tex_available(), "pdflatex (texlive-latex-extra)")
    assert cli(["solve", "linear-221", "--format", "pdf", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "linear-221.pdf").read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["linear-221.pdf"]


@pytest.mark.slow
def test_broken_latex_is_a_one_line_error_and_writes_no_pdf(tmp_path):
    need(tex_available(), "pdflatex (texlive-latex-extra)")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "solution.tex.j2").write_text(
        '((* extends "default/solution.tex.j2" *))((* block title *))\\undefinedcommand((* endblock *))',
        encoding="utf-8")
    with pytest.raises(RenderError) as err:
        write_solution(solve("linear-221"), "pdf", tmp_path / "out", "linear-221", template_dir=tmp_path / "t")
    assert "Undefined control sequence" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / "linear-221.pdf").exists()


# -- determinism -------------------------------------------------------------------------------------

def test_same_spec_gives_byte_identical_output_across_processes():
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run([sys.executable, "-m", "derive", "solve", "softmax-233", "--format", "tex"],
                             capture_output=True, env=env, check=True)
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].decode("utf-8") == rendered("softmax-233", "tex")


def test_no_absolute_paths_or_timestamps_reach_a_document():
    for name in EXAMPLES:
        for fmt in ("md", "tex"):
            text = rendered(name, fmt)
            assert str(ROOT) not in text and "/tmp/" not in text and "\\today" not in text


@pytest.mark.parametrize("name", ["sigmoid-451-batch", "softmax-233"])
def test_a_learning_rate_of_ten_million_still_gives_a_document(name):
    """The second step then saturates every unit: values near 10^±300000, whose exact fractions have a
    million digits. Fuzzing found a traceback (Python's 4300-digit limit) and 85 s runs here."""
    raw = tomllib.loads(example_text(name))
    raw["train"]["learning_rate"] = 10 ** 7
    sol = solve(raw)
    text = render_solution(sol, "md")
    assert "Traceback" not in text and number(sol.training.first.loss).tex in text
    assert all(number(sol.training.first.updated[p]).tex in text for p in sol.network.parameters)


def test_precision_out_of_range_is_a_user_error(capsys):
    assert cli(["solve", "linear-221", "--precision", "0"]) == 1
    assert capsys.readouterr().err == "derive: error: --precision 0: expected a whole number from 1 to 30\n"


@pytest.mark.slow
def test_wide_matrices_stay_within_the_margins(tmp_path):
    """An 8×8 weight matrix of six-digit numbers is wider than the page at the body's size; the
    update in matrix form must still fit (no overfull line in pdflatex's log)."""
    need(tex_available(), "pdflatex (texlive-latex-extra)")
    raw = {"network": {"layers": [2, 8, 8, 1], "activation": "sigmoid", "loss": "mse"},
           "data": {"x": [[0.3, -0.7]], "y": [[1]]}, "init": {"seed": 5}}
    (tmp_path / "wide.tex").write_text(render_solution(solve(raw), "tex"), encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "wide.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "wide.log").read_text(encoding="utf-8", errors="replace")
    assert "Overfull \\hbox" not in log, [line for line in log.splitlines() if "Overfull" in line]


# -- compiled templates kept between processes ---------------------------------------------------

def test_a_template_cache_that_cannot_be_written_or_read_only_means_compiling_again(tmp_path):
    """A folder that is a file (no home, a read-only disk) or a cache file cut short must not stop a document."""
    from derive.text.render import TEMPLATES, _QuietCache, environment
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    broken = tmp_path / "broken"
    broken.mkdir()
    expected = render_solution(solve("linear-221"), "md")
    for folder in (blocked, broken):
        cache = _QuietCache(str(folder))
        env = environment("md")
        env.bytecode_cache = cache
        env.get_template(TEMPLATES["md"])           # compiled, and written where it can be
        for written in broken.iterdir():
            written.write_bytes(written.read_bytes()[:20])     # every cache file cut short
        again = environment("md")
        again.bytecode_cache = cache
        assert again.get_template(TEMPLATES["md"]).filename.endswith(TEMPLATES["md"])
    assert render_solution(solve("linear-221"), "md") == expected


def test_an_edited_template_is_compiled_afresh_not_taken_from_the_cache(tmp_path):
    from derive.text.render import _QuietCache, environment
    folder = tmp_path / "templates"
    folder.mkdir()
    cache = _QuietCache(str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    page = folder / "page.md.j2"
    for text in ("first {{ 1 + 1 }}", "second {{ 2 + 2 }}"):
        page.write_text(text, encoding="utf-8")
        env = environment("md", folder)
        env.bytecode_cache = cache
        assert env.get_template("page.md.j2").render() == text.split()[0] + (" 2" if "1 + 1" in text else " 4")


def test_the_template_cache_is_in_the_users_cache_folder_or_off(tmp_path):
    """Without DERIVE_TEMPLATE_CACHE the compiled templates go to $XDG_CACHE_HOME/derive/templates; with "off",
    nowhere. The document is the same either way."""
    env = {k: v for k, v in os.environ.items() if k != "DERIVE_TEMPLATE_CACHE"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "kept")
    command = [sys.executable, "-m", "derive", "solve", "linear-221"]
    kept = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    assert any((tmp_path / "kept" / "derive" / "templates").iterdir())
    env.update(XDG_CACHE_HOME=str(tmp_path / "none"), DERIVE_TEMPLATE_CACHE="off")
    assert subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout == kept
    assert not (tmp_path / "none").exists()
