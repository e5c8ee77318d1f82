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
from derive.text.render import render_solution

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
             'document.body.setAttribute("data-math", document.querySelectorAll("math").length);</script>')
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


@pytest.mark.parametrize("name", ["sigmoid-222", "sigmoid-451-batch", "softmax-233"])
def test_no_page_overflows_a_phone_screen(name, tmp_path):
    """At 400 pixels wide, wide equations and tables scroll inside their box; the page itself never does."""
    page = render_solution(solve(name), "html")
    for width in (400, 1280):
        seen = measured(page, width, tmp_path)
        assert width - 60 <= int(seen["inner"]) <= width, seen          # the width asked for, less the page's margins
        assert int(seen["scroll"]) <= int(seen["inner"]), (name, width, seen)
        assert int(seen["math"]) > 100             # the MathML is there for the browser to lay out


def test_a_screenshot_shows_the_page(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(render_solution(solve("linear-221"), "html"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=400,1200", f"--screenshot={shot}", path.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000         # not a blank page


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
