"""The worked solution as one self-contained HTML page, and a Solution in a Jupyter notebook."""

from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import derive
from derive import example_names, solve
from derive.cli import main
from derive.text.mathml import mathml
from derive.text.render import render_solution
from tests.marionette import Firefox, executable

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "mspace", "path", "rect", "circle", "line",
        "polyline", "polygon", "use", "stop", "ellipse"}


class Structure(html.parser.HTMLParser):
    """Tags must nest and close; collects headings, external references and the elements seen."""

    def __init__(self):
        super().__init__()
        self.stack, self.headings, self.external, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") and value and not value.startswith("#"):
                self.external.append((tag, name, value))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def parsed(page: str) -> Structure:
    s = Structure()
    s.feed(page)
    s.close()
    assert s.stack == [], s.stack
    return s


@pytest.fixture(scope="module")
def pages():
    return {name: render_solution(solve(name), "html") for name in example_names()}


def test_every_example_is_one_well_formed_page_that_fetches_nothing(pages):
    for name, page in pages.items():
        s = parsed(page)
        assert s.external == [], (name, s.external[:3])
        assert "<script" not in page and "<link" not in page and "@import" not in page
        assert not re.search(r"url\((?!#)", page)      # only the page's own marker, url(#arrow)
        assert page.startswith("<!DOCTYPE html>") and '<html lang="en">' in page


def test_the_page_carries_what_the_markdown_carries(pages):
    """The same equations (every row's LaTeX, now MathML with the LaTeX as alttext) and the same sections."""
    for name in ("linear-221", "softmax-233", "sigmoid-451-batch"):
        page, md = pages[name], render_solution(solve(name), "md")
        assert page.count('<details class="eq"') == md.count(r"\begin{aligned}"), name
        for title in re.findall(r"^## (.+)$", md, re.M):
            assert f"<h2>{title}</h2>" in page, (name, title)
        # every number of the Markdown's first backward equation is in the page's alttext
        first = md[md.index("## 5. Backward pass"):].split(r"\end{aligned}")[0]
        for number in re.findall(r"-?\d+\.\d+", first):
            assert number in page


def test_headings_in_order_tables_with_headers_figures_with_text(pages):
    for name, page in pages.items():
        s = parsed(page)
        assert s.headings[0] == 1 and all(b - a <= 1 for a, b in zip(s.headings, s.headings[1:])), name
        tags = [t for t, _ in s.tags]
        assert tags.count("table") == tags.count("thead") and "th" in tags
        assert tags.count("figure") == tags.count("figcaption") and tags.count("svg") == tags.count("title") - 1
        assert all("alttext" in a for t, a in s.tags if t == "math")


def test_folded_reveal_folds_every_derivation_step(capsys, tmp_path):
    assert main(["solve", "sigmoid-222", "--format", "html", "--reveal", "folded", "--out", str(tmp_path)]) == 0
    page = (tmp_path / "sigmoid-222.html").read_text(encoding="utf-8")
    backward = page[page.index('<section id="backward">'):page.index('<section id="general">')]
    assert '<details class="eq">' in backward and "<details class=\"eq\" open>" not in backward
    assert '<details class="eq" open>' in render_solution(solve("sigmoid-222"), "html")


def test_hostile_text_stays_text():
    raw = {"title": "</title><script>alert(1)</script> & <b>", "description": "$x$ <img src=x onerror=alert(1)>",
           "network": {"layers": [1, 1], "activation": "linear"}, "data": {"x": [[1]], "y": [[2]]},
           "init": {"W1": [[0.5]]}}
    page = render_solution(solve(raw), "html")
    assert "<script>" not in page and "<img" not in page and "&lt;/title&gt;&lt;script&gt;" in page
    parsed(page)


def test_a_sign_after_a_bracket_or_an_operator_is_set_as_a_sign():
    """MathML Core takes an operator for a prefix only as its row's first child: (−0.04) and = −0.04 must say so,
    or the browser spaces the minus as in a − b."""
    assert '<mo form="prefix">&#x02212;</mo><mn>0.038</mn>' in mathml(r"\left(-0.038\right) \cdot 0.59")
    assert '<mo>&#x0003D;</mo><mo form="prefix">&#x02212;</mo>' in mathml("x = -0.5")
    for binary in ("a - b", r"\left(a\right) - b", "f(x) - 1"):
        assert 'form="prefix">&#x02212;' not in mathml(binary), binary


def test_a_slash_is_set_close_as_tex_sets_it():
    """∂E/∂w₆ in a table's row: TeX's / is an ordinary symbol; MathML's operator default would space it (∂E / ∂w)."""
    out = mathml(r"\partial E/\partial w_{6}")
    assert '<mi>E</mi><mo lspace="0" rspace="0">&#x0002F;</mo><mo>&#x02202;</mo>' in out
    page = render_solution(solve("sigmoid-222"), "html")
    assert "<mo>&#x0002F;</mo>" not in page and page.count('rspace="0">&#x0002F;</mo>') >= 6


def test_a_user_template_overrides_one_block(tmp_path):
    (tmp_path / "solution.html.j2").write_text(
        '{% extends "default/solution.html.j2" %}{% block title %}<h1>Week 5</h1>{% endblock %}', encoding="utf-8")
    page = render_solution(solve("linear-221"), "html", template_dir=tmp_path)
    assert "<h1>Week 5</h1>" in page and '<section id="backward">' in page


# -- what a person sees: headless Chromium at a phone's and a desktop's width ------------------

def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return found


def measured(page: str, width: int, tmp_path: Path) -> dict[str, str]:
    """The page's scroll width and its widest equation, read by a script added to a copy of the page only."""
    probe = ('<script>document.body.setAttribute("data-scroll", document.body.scrollWidth);'
             'document.body.setAttribute("data-inner", document.body.clientWidth);'
             'document.body.setAttribute("data-math", document.querySelectorAll("math").length);'
             f'document.body.setAttribute("data-beyond", (() => {{ {BEYOND} }})());</script>')
    # headless Chromium's window is at least 500 pixels wide: the page is laid out 400 wide inside it
    zoom = f"<style>html {{ width: {width}px }}</style>" if width < 500 else ""
    path = tmp_path / f"probe-{width}.html"
    path.write_text(page.replace("</head>", zoom + "</head>").replace("</body>", probe + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / f'profile-{width}'}", f"--window-size={max(width, 500)},900"]
    done = subprocess.run([chromium(), *flags, "--dump-dom", path.as_uri()], capture_output=True, text=True,
                          timeout=120)
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stderr[-2000:]
    return dict(re.findall(r'data-(\w+)="([^"]*)"', body[1]))


# how many elements end beyond the right edge of the page (the <html> box): on paper they would be cut off
BEYOND = ("const edge = document.documentElement.getBoundingClientRect().right + 0.5;"
          "return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > edge).length;")
PRINTED_WIDTH = 680     # px: A4 (210 mm) less the page's 15-mm margins, at CSS's 96 px per inch
# the 2-6-6-2 network's update in matrix form has six columns of numbers such as 8.24787 × 10⁻⁵
WIDE = {"title": "A 2-6-6-2 network", "network": {"layers": [2, 6, 6, 2], "activation": "sigmoid", "bias": "neuron",
                                                   "loss": "mse"},
        "data": {"x": [[0.5, -0.4]], "y": [[1, 0]]}, "init": {"seed": 3}, "train": {"learning_rate": 0.5}}


def as_printed(page: str) -> str:
    """The page laid out as on paper: its print rules in force, as wide as an A4 page's text."""
    assert page.count("@media print") == 1
    return page.replace("@media print", "@media all").replace("</head>", f"<style>html {{ width: {PRINTED_WIDTH}px }}"
                                                                        "</style></head>")


@pytest.mark.parametrize("name", ["sigmoid-222", "sigmoid-451-batch", "softmax-233"])
def test_no_page_overflows_a_phone_screen(name, tmp_path):
    """At 400 pixels wide, wide equations and tables scroll inside their box; the page itself never does."""
    page = render_solution(solve(name), "html")
    for width in (400, 1280):
        seen = measured(page, width, tmp_path)
        assert width - 60 <= int(seen["inner"]) <= width, seen          # the width asked for, less the page's margins
        assert int(seen["scroll"]) <= int(seen["inner"]), (name, width, seen)
        assert int(seen["math"]) > 100             # the MathML is there for the browser to lay out


@pytest.mark.parametrize("name", [*example_names(), "2-6-6-2"])
def test_the_printed_page_keeps_every_line_within_the_paper(name, tmp_path):
    """Paper cannot scroll: with the print rules, tables, long formulas and wide matrices end inside the page."""
    seen = measured(as_printed(render_solution(solve(WIDE if name == "2-6-6-2" else name), "html")), PRINTED_WIDTH,
                    tmp_path)
    assert seen["beyond"] == "0", seen


def test_a_screenshot_shows_the_page(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(render_solution(solve("linear-221"), "html"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=400,1200", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000         # not a blank page


# -- what a person sees in Firefox: the same checks, driven over Marionette ---------------------

@pytest.fixture(scope="module")
def firefox(tmp_path_factory):
    program = executable()
    if program is None:
        if os.environ.get("CI") == "true":
            pytest.fail("firefox is missing in CI (.ci/run installs Debian's firefox-esr)")
        pytest.skip("firefox is not installed")
    browser = Firefox(program, tmp_path_factory.mktemp("firefox-profile"))
    yield browser
    browser.close()


# what the page shows in the browser: its widths, its formulas laid out (each fraction's numerator centred at least
# 3 px above its denominator, which only a MathML layout does: as plain inline text they would sit side by side), its visible text, and what ends beyond the page's right edge
SEEN = ("const math = [...document.querySelectorAll('math')], fractions = [...document.querySelectorAll('mfrac')];"
        "return {scroll: document.body.scrollWidth, inner: document.body.clientWidth, math: math.length,"
        " laid: math.filter(m => m.getBoundingClientRect().width > 0).length, fractions: fractions.length,"
        " stacked: fractions.filter(f => { const [n, d] = [...f.children].map(c => c.getBoundingClientRect());"
        "                                 return n.top + n.bottom + 6 < d.top + d.bottom; }).length,"
        " text: document.body.innerText, beyond: (() => { " + BEYOND + " })()};")


@pytest.mark.parametrize("name", example_names())
def test_firefox_lays_out_every_formula_and_no_page_overflows_a_phone(name, firefox, tmp_path):
    page = render_solution(solve(name), "html")
    for width in (400, 1280):
        # like Chromium's, headless Firefox's window has a least width (450): the page is laid out 400 wide in it
        firefox.call("WebDriver:SetWindowRect", {"width": max(width, 500), "height": 900})
        path = tmp_path / f"{width}.html"
        path.write_text(page.replace("</head>", f"<style>html {{ width: {width}px }}</style></head>"), encoding="utf-8")
        seen = firefox.run(SEEN, path.as_uri())
        assert width - 60 <= seen["inner"] <= width and seen["scroll"] <= seen["inner"], (name, width)
        assert seen["math"] == page.count("<math ") == seen["laid"]
        assert seen["fractions"] > 10 and seen["stacked"] == seen["fractions"], seen["stacked"]
        assert not re.search(r"\\frac|\\partial|\\left|\$", seen["text"])
    path = tmp_path / "printed.html"
    path.write_text(as_printed(page), encoding="utf-8")
    assert firefox.run(SEEN, path.as_uri())["beyond"] == 0


def test_firefox_keeps_the_printed_matrices_of_a_wide_network_within_the_paper(firefox, tmp_path):
    path = tmp_path / "printed.html"
    path.write_text(as_printed(render_solution(solve(WIDE), "html")), encoding="utf-8")
    assert firefox.run(SEEN, path.as_uri())["beyond"] == 0


# -- Jupyter -----------------------------------------------------------------------------------

def test_a_solution_displays_itself():
    s = derive.solve("sigmoid-222")
    page = s._repr_html_()
    assert '<div class="derive">' in page and "<html" not in page and "<main" not in page and page.startswith("<style>")
    assert s._repr_markdown_().startswith("# ")
    latex = s._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}E &\\approx 0.298371") and r"\partial w_{5}} &\approx 0.0821670" in latex
    backward = s.show("backward")
    assert backward.html.count("<h2>") == 1 and "5. Backward pass" in backward.html
    assert backward._repr_markdown_().startswith("## 5. Backward pass")
    chain = s.show("w5")
    assert r'alttext="\frac{\partial E}{\partial w_{5}}"' in chain.html and chain.markdown.startswith("$$")
    with pytest.raises(derive.DeriveError, match="expected a section"):
        s.show("nothing")


def test_a_real_notebook_shows_the_worked_solution(tmp_path):
    """nbclient runs a notebook with a real kernel: the last line of a cell shows the solution."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [nbformat.v4.new_code_cell('import derive\ns = derive.solve("sigmoid-222")\ns'),
             nbformat.v4.new_code_cell('s.show("w5")')]
    notebook = nbformat.v4.new_notebook(cells=cells)
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env["PYTHONPATH"] + (os.pathsep + old if old else "")
    try:
        nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    whole = notebook.cells[0].outputs[0]["data"]
    assert "5. Backward pass" in whole["text/html"] and "<math" in whole["text/html"]
    chain = notebook.cells[1].outputs[0]["data"]["text/html"]
    assert r"\frac{\partial E}{\partial w_{5}}" in chain


def test_exam_sheets_and_keys_as_html(tmp_path):
    """derive exam --format html: a sheet per variant, every sheet in sheets.html, and keys whose worked
    solution has every step folded; each a page that fetches nothing."""
    out = tmp_path / "exam"
    assert main(["exam", "sigmoid-222", "--variants", "2", "--seed", "1", "--out", str(out), "--format", "html"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"sheet-01.html", "sheet-02.html", "key-01.html", "key-02.html", "sheets.html", "answers.json"} <= names
    for name in ("sheet-01.html", "key-01.html", "sheets.html"):
        page = (out / name).read_text(encoding="utf-8")
        s = parsed(page)
        assert s.external == [] and "<script" not in page and page.count("<main") == 1, name
    key = (out / "key-01.html").read_text(encoding="utf-8")
    # sigmoid-222's short solution alone has 8 forward, 16 backward and 10 update derivations: all folded
    assert key.count('<details class="eq">') > 34
    assert key.count('<details class="eq" open') == 2      # the setup's given W^(1) and W^(2): data, not answers
    assert "Claim for <code>derive check" in key
    sheet = (out / "sheet-01.html").read_text(encoding="utf-8")
    assert "Answer:" in sheet and "<details" not in sheet and "Regenerate this variant alone" in sheet
