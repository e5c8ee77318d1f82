"""The fast path of the MathML converter against its oracle, latex2mathml: the same bytes wherever it answers, and
no answer (so latex2mathml's own) for anything outside its grammar: the formulas of every example page, formulas
drawn from the grammar, token soups and hostile input."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from latex2mathml.converter import convert

from derive import example_names, solve
from derive.text import render
from derive.text.fastmathml import LEAVES, fast_convert
from derive.text.model import View
from tests.benchmark import sigmoid_net

DISPLAYS = ("inline", "block")
HEAD = '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline"><mrow>'


def oracle(latex: str, display: str = "inline") -> str | None:
    """latex2mathml's MathML, or None where it refuses the formula."""
    try:
        return convert(latex, display=display)
    except Exception:                   # its errors have no common base class
        return None


def agrees(latex: str) -> bool:
    """The fast path answers as latex2mathml does, in both displays, or not at all; True if it answered."""
    answered = False
    for display in DISPLAYS:
        fast = fast_convert(latex, display)
        if fast is not None:
            assert fast == oracle(latex, display), latex
            answered = True
    return answered


def page_formulas(monkeypatch: pytest.MonkeyPatch, specs) -> dict[str, int]:
    """Every formula render_solution gives to mathml() for these specs' HTML pages, short and full, with its count."""
    seen: dict[str, int] = {}
    original = render.mathml

    def recording(latex: str, display: bool = False) -> str:
        seen[latex] = seen.get(latex, 0) + 1
        return original(latex, display)

    monkeypatch.setattr(render, "mathml", recording)
    for spec in specs:
        solution = solve(spec)
        for detail in ("short", "full"):
            render.render_solution(solution, "html", doc=render.document(solution, view=View(detail=detail)))
    return seen


def covered(formulas: dict[str, int]) -> tuple[float, float]:
    """The fast path's answers checked against the oracle; its share of the formulas and of the calls."""
    answered = {latex for latex in formulas if agrees(latex)}
    calls = sum(formulas.values())
    share = (len(answered) / len(formulas), sum(formulas[f] for f in answered) / calls)
    print(f"fast path: {share[0]:.1%} of {len(formulas)} formulas, {share[1]:.1%} of {calls} calls")
    return share


# -- the corpus: what derive's pages really ask -------------------------------------------------------------

def test_every_formula_of_every_example_page_is_latex2mathmls_own(monkeypatch):
    formulas, calls = covered(page_formulas(monkeypatch, example_names()))
    assert formulas >= 0.9 and calls >= 0.9


@pytest.mark.slow
def test_every_formula_of_generated_networks_is_latex2mathmls_own(monkeypatch):
    specs = [sigmoid_net([8] * 4), sigmoid_net([16] * 4)]
    for activation in ("relu", "tanh"):
        spec = sigmoid_net([4, 5, 3])
        spec["network"]["activation"] = activation
        specs.append(spec)
    formulas, calls = covered(page_formulas(monkeypatch, specs))
    assert formulas >= 0.9 and calls >= 0.9


# -- the tables: every leaf alone and among others ----------------------------------------------------------

@pytest.mark.parametrize("token", sorted(LEAVES))
def test_every_leaf_is_what_latex2mathml_writes_for_it_wherever_it_stands(token):
    assert convert(token) == f"{HEAD}{LEAVES[token]}</mrow></math>"
    for latex in (f"a {token} 1", f"{token}_{{1}}", f"x^{{{token}}}", f"\\frac{{{token}}}{{2}}",
                  f"\\left({token}\\right)", f"{{{token}}}'"):
        assert agrees(latex), latex


@pytest.mark.parametrize("latex", [
    r"\bigl( a \bigr)", r"\Bigl[ a \Bigr]", r"\left[ x \right]", r"\left| x \right|", r"\left( x \right]",
    r"\mathbf{1}", r"\mathbf{12}^{\mathsf{T}}", r"\operatorname{diag}\left(x\right)", r"\operatorname{ReLU}'(z)",
    r"\begin{bmatrix}-0.33 & 0.22\\0.47 & 1\end{bmatrix}", r"a = \begin{bmatrix}1\end{bmatrix} + 2",
    r"\underbrace{a + b}_{\delta}", r"\underbrace{\frac{\partial E}{\partial a}}", r"x'_{1}", r"x_{1}'",
    r"x^{2}_{1}", r"x_{1}^{2}", r"{}", r"x_{}", r"\left( \right)", r"\frac{}{}", r"{x}_{1}^{2}",
    r"\frac{\partial E}{\partial w^{(1)}_{11}} \approx -1.2 \times 10^{-5}", r"\sigma\left(z\right)(1 - \sigma)",
])
def test_each_construct_is_latex2mathmls_own(latex):
    assert agrees(latex)


# -- drawn from the grammar ---------------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(0, 10**7).map(str),
                    st.tuples(st.integers(0, 999), st.integers(0, 10**6)).map(lambda p: f"{p[0]}.{p[1]}"))
SCIENTIFIC = st.tuples(st.integers(-9, 9), st.integers(0, 99), st.integers(-20, 20)).map(
    lambda p: f"{p[0]}.{p[1]} \\times 10^{{{p[2]}}}")
LETTERS = st.sampled_from(sorted(t for t in LEAVES if t.isalpha() or t.startswith("\\")))
OPERATORS = st.sampled_from(["+", "-", "=", r"\approx", r"\cdot", r"\times", ",", "<", ">", "/"])
MATRICES = st.integers(1, 4).flatmap(lambda width: st.lists(st.lists(
    st.tuples(st.sampled_from(["", "-", "- "]), NUMBERS).map("".join), min_size=width, max_size=width),
    min_size=1, max_size=4)).map(lambda rows: "\\begin{bmatrix}" + "\\\\".join(" & ".join(r) for r in rows)
                                 + "\\end{bmatrix}")
FONTS = st.sampled_from([r"\mathbf{1}", r"\mathbf{a}", r"\mathsf{T}", r"\operatorname{diag}", r"\operatorname{id}"])


def _scripted(base: str, sub: str | None, sup: str | None, prime: bool) -> str:
    """A base with what may follow it: a prime, a subscript, a superscript (in either order), as the walker allows."""
    if prime:
        return f"{base}'" + (f"_{{{sub}}}" if sub is not None else "")
    scripts = [f"_{{{sub}}}" if sub is not None else "", f"^{{{sup}}}" if sup is not None else ""]
    return base + "".join(scripts if len(base) % 2 else scripts[::-1])


def _expressions(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    script = st.one_of(st.none(), inner)
    base = st.one_of(LETTERS, NUMBERS, FONTS, inner.map(lambda e: f"{{{e}}}"),
                     st.tuples(inner, inner).map(lambda p: f"\\frac{{{p[0]}}}{{{p[1]}}}"),
                     st.tuples(st.sampled_from("(["), inner, st.sampled_from(")]|"))
                     .map(lambda p: f"\\left{p[0]} {p[1]} \\right{p[2]}"))
    term = st.one_of(st.builds(_scripted, base, script, script, st.booleans()),
                     st.tuples(inner, inner).map(lambda p: f"\\underbrace{{{p[0]}}}_{{{p[1]}}}"),
                     inner.map(lambda e: f"\\bigl( {e} \\bigr)"), inner.map(lambda e: f"\\Bigl[ {e} \\Bigr]"))
    return st.lists(st.one_of(term, SCIENTIFIC, MATRICES, OPERATORS), min_size=1, max_size=5).map(" ".join)


FORMULAS = st.recursive(st.one_of(LETTERS, NUMBERS, SCIENTIFIC, OPERATORS), _expressions, max_leaves=12)


@settings(max_examples=300)
@given(FORMULAS)
def test_a_formula_of_the_grammar_is_latex2mathmls_own(latex):
    assert agrees(latex)


@settings(max_examples=300)
@given(FORMULAS, st.randoms(use_true_random=False))
def test_with_or_without_spaces_the_answer_is_latex2mathmls_or_none(latex, rnd):
    agrees(re.sub(r" ", lambda m: rnd.choice(["", " ", "\n", "  "]), latex))


# outside the grammar: each makes any formula it stands in fall back, wherever it stands
OUTSIDE = [r"\sqrt{2}", r"\sum", r"\mathbf {a}", r"\boldsymbol{x}", r"\text{a}", "&", "%", r"\\", r"\{", ".5",
           "2pt", "3 em", "_1", "^2", r"\frac12", r"\begin{matrix}", r"\end{bmatrix}", r"\right)", "{", "}",
           r"\left\{", r"\bigl\{", r"\limits", r"\displaystyle", r"\color{red}", "٣", "σ", '"', r"\ ", "!", ";",
           r"\operatorname{a b}"]


@settings(max_examples=300)
@given(FORMULAS, st.sampled_from(OUTSIDE), st.integers(0, 10**6))
def test_anything_outside_the_grammar_falls_back(latex, outside, at):
    cut = at % (len(latex) + 1)
    while cut < len(latex) and latex[cut - 1:cut + 1].isalpha():    # not inside a command's name
        cut += 1
    odd = f"{latex[:cut]} {outside} {latex[cut:]}"
    if outside in ("&", r"\\") and latex.rfind(r"\begin{bmatrix}", 0, cut) > latex.rfind(r"\end{bmatrix}", 0, cut):
        agrees(odd)         # a column or a row more inside a matrix: still the printer's grammar, as latex2mathml
        return
    assert fast_convert(odd) is None, odd


# -- token soup and hostile input: whatever the fast path answers is latex2mathml's answer ----------------

SOUP = st.lists(st.sampled_from(["{", "}", "_", "^", "'", r"\frac", r"\left", r"\right", "(", ")", "[", "]", "|",
                                 "x", "1", "2.5", r"\underbrace", r"\bigl", r"\Bigr", r"\cdot", "-", "+", " ", "",
                                 r"\mathbf{1}", r"\mathsf{T}", r"\operatorname{id}", r"\partial", "pt", ".",
                                 r"\begin{bmatrix}", r"\end{bmatrix}", "&", r"\\"]),
                max_size=14).map("".join)


@settings(max_examples=1000)
@given(SOUP)
def test_a_token_soup_is_answered_as_latex2mathml_or_not_at_all(latex):
    agrees(latex)


@pytest.mark.parametrize("latex", [
    "", " ", "{", "}", "{x", "x}", r"\left( x", r"x \right)", r"\left( {x \right) }", r"{ \left( } \right)",
    r"\foo", r"\frac{a}", r"\frac{a}_{1}{b}", r"x_{1}_{2}", r"x^{1}^{2}", r"x_{1}^{2}_{3}", r"x''", r"x^{2}'",
    r"\underbrace{a}^{b}", r"\underbrace{a}_{b}^{c}", "_{1}", "'", "x < y", "a & b", "<b>&amp;</b>", "1.", "1.2.3",
    "1 pt", "-2em", r"\left. x \right.", r"\left\lbrace x \right\rbrace", "x % comment", r"\mathbf{x}y",
    "\\mathbf{\u0663}", "\u0663", "x\u00a0y", "x\ty\nz", r"\frac {a} {b}", r"\frac 1 2", r"x _ {1}", r"\bigl\langle",
    r"\begin{bmatrix}\end{bmatrix}", r"\begin{bmatrix}1 & \end{bmatrix}", r"\begin{bmatrix}1\\\end{bmatrix}",
    r"\begin{bmatrix}1", r"\begin{bmatrix}[1]\end{bmatrix}", r"\begin{bmatrix}x_{1}\end{bmatrix}",
    r"\begin{bmatrix}1\end{bmatrix}^{T}", r"\begin {bmatrix}1\end{bmatrix}", r"\begin{bmatrix}1 &\\& 2\end{bmatrix}",
])
def test_hostile_or_odd_input_is_latex2mathmls_own_or_falls_back(latex):
    agrees(latex)
    if oracle(latex) is None:           # latex2mathml refuses it: so must the fast path, leaving it the error
        assert fast_convert(latex) is None
