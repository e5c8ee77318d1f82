"""The claim parser: what it reads, what it refuses, and that hostile text never runs or hangs."""

from __future__ import annotations

import builtins
import os
import sys
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive import solve
from derive.check.claims import NameRef, SampleSum, parse_expression, tokenize
from derive.check.verdict import check_claim
from derive.errors import ClaimError
from derive.model.registry import ReLU, Sigmoid

HERE = Path(__file__).parent


class Names:
    """A vocabulary for parser tests: every plain name is a real symbol of that name."""

    known = {"o", "y", "h1", "h2", "x1", "x2", "w5", "w6", "w2_11", "a1_2", "z_h1", "z_o", "delta_o", "N", "eta"}

    def symbol(self, ref: NameRef, in_sum: bool) -> sp.Expr:
        for plain, index in ref.spellings:
            if plain in self.known:
                name = plain + ("'" if ref.prime else "") + (f"[{index}]" if index else "")
                return sp.Symbol(name, real=True)
        raise ClaimError(f"column {ref.column}: unknown name {ref.text!r}")

    def derivative(self, loss: str, ref: NameRef, in_sum: bool) -> sp.Expr:
        return sp.Symbol(f"d{loss}/d{ref.spellings[0][0]}", real=True)


def S(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def read(text: str) -> sp.Expr:
    return parse_expression(text, Names()).expr


o, y, h1, h2, x1, w5, z_h1, z_o = (S(n) for n in ("o", "y", "h1", "h2", "x1", "w5", "z_h1", "z_o"))


# -- what it reads ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("(o - y)*h1", (o - y) * h1),
    ("(o - y) h1", (o - y) * h1),                      # juxtaposition multiplies
    ("2(o-y)h1", 2 * (o - y) * h1),
    ("h1w5", h1 * w5),                                 # a digit ends a name
    ("o**2 + o^2", 2 * o ** 2),
    ("-o^2", -o ** 2),                                 # the power binds tighter than the sign
    ("2^3^2", sp.Integer(2 ** 9)),                     # right-associative
    ("o*(1 - o)", o * (1 - o)),
    ("0.1 + 1/3", sp.Rational(1, 10) + sp.Rational(1, 3)),   # decimals are exact
    ("1.5e-2", sp.Rational(3, 200)),
    ("sigmoid(z_o)", Sigmoid(z_o)),
    ("sigmoid'(z_o)", Sigmoid(z_o) * (1 - Sigmoid(z_o))),
    ("tanh'(z_h1)", 1 - sp.tanh(z_h1) ** 2),
    ("relu'(z_h1)", sp.Heaviside(z_h1, 0)),
    ("max(0, z_h1)", ReLU(z_h1)),
    ("leaky_relu(z_h1)", sp.Piecewise((z_h1, z_h1 > 0), (z_h1 / 100, True))),    # the default slope 0.01
    ("leaky_relu'(z_h1)", sp.Piecewise((1, z_h1 > 0), (sp.Rational(1, 100), True))),
    ("\\operatorname{LReLU}(z_{h_1})", sp.Piecewise((z_h1, z_h1 > 0), (z_h1 / 100, True))),
    ("exp(-z_o) + e^{-z_o}", 2 * sp.exp(-z_o)),
    ("ln(o) - log(o)", sp.Integer(0)),
    ("sqrt(4)", sp.Integer(2)),
    ("w_5 + w_{5}", 2 * w5),
    ("z_{h_1}", z_h1),
    ("w^{(2)}_{11}", S("w2_11")),
    ("a^{(1)}_{2}", S("a1_2")),
    ("\\delta_{o}", S("delta_o")),
    ("δ_o", S("delta_o")),
])
def test_plain_and_latex_forms(text, expected):
    assert sp.simplify(read(text) - expected) == 0


@pytest.mark.parametrize("latex, plain", [
    (r"\frac{1}{2}(o - y)^{2}", "(o - y)^2/2"),
    (r"\left(o - y\right) \cdot h_1", "(o - y)*h1"),
    (r"(o - y) \times h_{1}", "(o - y)*h1"),
    (r"\sigma(z_o)\,(1 - \sigma(z_o))", "sigmoid(z_o)*(1 - sigmoid(z_o))"),
    (r"\sigma'(z_o)", "sigmoid(z_o)*(1 - sigmoid(z_o))"),
    (r"\sigma^{\prime}(z_o)", "sigmoid(z_o)*(1 - sigmoid(z_o))"),
    (r"\tanh^2(z_{h_1})", "tanh(z_h1)^2"),
    (r"\dfrac{\partial E}{\partial o} \cdot w_5", "dE/do*w5"),
    (r"\exp\left(-z_{o}\right)", "exp(-z_o)"),
    (r"\operatorname{ReLU}(z_{h_1})", "relu(z_h1)"),
    (r"\mathrm{e}^{z_o}", "exp(z_o)"),
    ("σ(z_o)·(1 − σ(z_o))", "sigmoid(z_o)*(1 - sigmoid(z_o))"),
    ("o² − y³", "o^2 - y^3"),
    ("h₁ w₅", "h1*w5"),
    ("½ (o − y)²", "(o - y)^2/2"),
    (r"2 \cdot \eta", "2*eta"),
    (r"\frac{2}{N} \sum_{n=1}^{N} (o_n - y_n) h_{1}", "2/N*sum((o - y)*h1)"),
])
def test_latex_a_student_pastes(latex, plain):
    assert sp.simplify(read(latex) - read(plain)) == 0


def test_sums_indices_and_primes():
    assert read("sum((o - y)*h1)") == SampleSum((o - y) * h1)
    assert read("o[2] - y[2]") == S("o[2]") - S("y[2]")
    assert read("w5' - w5") == S("w5'") - w5
    assert read("sum(o[n])") == SampleSum(o)


@pytest.mark.parametrize("text, written, decimals", [
    ("0.17", "number", 2),
    ("-0.17", "number", 2),
    ("0.170", "number", 3),
    ("17", "number", None),
    ("1.7e-2", "number", 3),
    ("1.7 \\times 10^{-2}", "number", 3),
    ("1.7*10^-2", "number", 3),
    ("2e3", "number", None),
    ("1/3", "expression", None),
    ("0.14 - 0.05*(-0.809)*0.85", "expression", 3),
])
def test_precision_a_number_claims(text, written, decimals):
    rhs = parse_expression(text, Names())
    assert (rhs.written, rhs.decimals) == (written, decimals)


def test_columns_point_at_the_character():
    with pytest.raises(ClaimError, match="column 5: unexpected character '#'"):
        read("o + #")          # ($ is a math delimiter: $o = 0.75$ reads as o = 0.75)
    with pytest.raises(ClaimError, match=r"column 3: unexpected character 'һ' \(U\+04BB\)"):
        read("o*һ1")


def test_tokens_are_whitelisted():
    kinds = {t.kind for t in tokenize(r"\frac{\partial E}{\partial w_5} = \sigma'(z) \cdot 0.5")}
    assert kinds <= {"num", "name", "op", "frac", "partial", "end"}


# -- what it refuses, fast ----------------------------------------------------------------------

def hostile() -> list[str]:
    lines = (HERE / "hostile_claims.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


@pytest.fixture(scope="module")
def linear():
    s = solve("linear-221")
    s.training
    return s


@pytest.mark.parametrize("text", hostile())
def test_hostile_claims_are_refused_in_one_line(linear, text):
    with pytest.raises(ClaimError) as info:
        check_claim(linear, text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("claim ")


@pytest.mark.parametrize("text", [
    "o = " + "(" * 1000 + "o" + ")" * 1000,
    "o = " + "-" * 1500 + "o",
    "o = " + "sigmoid(" * 300 + "o" + ")" * 300,
    "o = " + "+".join(["o"] * 1000),
    "o = " + "9" * 5000,
    "o = " + "o^" * 400 + "o",
    "o = " + "x" * 6000,
], ids=["parentheses", "signs", "calls", "terms", "digits", "powers", "length"])
def test_huge_inputs_are_refused(linear, text):
    # how fast: python -m tests.benchmark --only refusals (milliseconds)
    with pytest.raises(ClaimError) as info:
        check_claim(linear, text)
    assert "\n" not in str(info.value)


def test_nothing_is_executed(linear, tmp_path):
    """A claim that would create a file if any part of it were run as Python creates nothing."""
    target = tmp_path / "pwned"
    for text in [f"o = __import__('pathlib').Path('{target}').touch()",
                 f"o = open('{target}', 'w')",
                 f"o = exec(\"open('{target}','w')\")"]:
        with pytest.raises(ClaimError):
            check_claim(linear, text)
    assert not target.exists()


# -- fuzzing ------------------------------------------------------------------------------------

TOKENS = ["dE/dw5", "dE/do", "=", "(", ")", "{", "}", "[", "]", "^", "**", "*", "/", "+", "-", "'", ",", "_",
          "0", "1", "2", "0.5", "1e-3", "9", "99999", "o", "y", "h1", "x1", "w5", "w1_11", "a1_1", "z_o", "E",
          "N", "eta", "e", "delta_o", "sigmoid", "tanh", "exp", "log", "relu", "sqrt", "max", "sum", "\\sum",
          "leaky_relu", "leaky_relu'", "LReLU",
          "\\frac", "\\partial", "\\sigma", "\\cdot", "\\left(", "\\right)", "\\,", "σ", "∂", "−", "·", "²", "′",
          "n", "[n]", "[1]", "[2]", "_{", "^{(", "\\mathrm{", "\\tanh", " ", "\\prime", "e^", "d", "L",
          "__import__", ".", "lambda", ":", "os", "'os'", "1/0", "log(0)", "0^-1",
          # matrix claims
          "dE/dW2", "dE/db1", "W1", "W2", "W1'", "b1", "X", "Y", "Z1", "A1", "A2", "Delta2", "delta1", "dW1", "Δ2",
          "^T", ".T", "ᵀ", "@", ".*", "⊙", "\\odot", "[[", "]]", ";", "&", "\\begin{bmatrix}", "\\end{bmatrix}",
          "\\\\", "1_N", "1_2", "softmax", "sigma'"]


@pytest.fixture(scope="module")
def networks():
    out = [solve(name) for name in ("linear-221", "sigmoid-rows-mse", "softmax-233", "relu-231")]
    for s in out:
        s.training
    return out


_EXEC = builtins.exec


def _never(*args, **kwargs):
    # SymPy builds its monomial arithmetic once per ring shape by exec of its own template code (no user text)
    if sys._getframe(1).f_code.co_filename.endswith(os.path.join("sympy", "polys", "monomials.py")):
        return _EXEC(*args, **kwargs)
    raise AssertionError("user text reached eval, exec or parse_expr")


def _survives(networks, text: str) -> None:
    """Every outcome is a Verdict or a one-line ClaimError, and nothing is evaluated as Python."""
    import sympy.parsing.sympy_parser as sympy_parser

    saved = builtins.eval, builtins.exec, sympy_parser.parse_expr
    builtins.eval = builtins.exec = sympy_parser.parse_expr = _never
    try:
        for s in networks:
            try:
                verdict = check_claim(s, text)
                assert isinstance(verdict.holds, bool)
            except ClaimError as exc:
                assert "\n" not in str(exc)
    finally:
        builtins.eval, builtins.exec, sympy_parser.parse_expr = saved


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=40))
def test_fuzz_token_soup(networks, tokens):
    _survives(networks, "".join(tokens))
    _survives(networks, "dE/dw5 = " + " ".join(tokens))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=80))
def test_fuzz_random_text(networks, text):
    _survives(networks, text)
    _survives(networks, "o = " + text)
