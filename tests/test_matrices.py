"""Matrix and vector claims (dE/dW2 = Delta2 * A1^T, [[…]] of numbers): read as textbooks write them, judged
entry by entry against independent answers, diagnosed as matrices (shapes, the transpose, one wrong entry)."""

from __future__ import annotations

import json
import os
import time
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from derive import solve
from derive.check.claims import parse_lhs, split_claim, tokenize
from derive.check.matrices import correct_formula, matrix_names, matrix_quantity
from derive.check.mistakes import model
from derive.check.verdict import check_claim
from derive.derived.formulas import matrix_form, matrix_values
from derive.errors import ClaimError
from tests.test_check import run
from tests.test_engine import seed3_column

SEED3_COLUMN = seed3_column()       # the third seed's network with W stored out × in

EXAMPLES = sorted(f[:-5] for f in os.listdir(os.path.join(os.path.dirname(__file__), "..", "derive", "examples"))
                  if f.endswith(".toml"))


@pytest.fixture(scope="module")
def hmk():
    return solve("linear-221")


@pytest.fixture(scope="module")
def mazur():
    return solve("sigmoid-222")


@pytest.fixture(scope="module")
def batch():
    return solve("sigmoid-451-batch")


@pytest.fixture(scope="module")
def rows():
    return solve("sigmoid-rows-mse")


def hmk_by_hand() -> dict[str, list[list[Fraction]]]:
    """hmkcode's 2-2-1 linear network worked by hand in exact fractions (no derive code): x = (2, 3), y = 1."""
    x, y = [Fraction(2), Fraction(3)], Fraction(1)
    W1 = [[Fraction("0.11"), Fraction("0.21")], [Fraction("0.12"), Fraction("0.08")]]
    W2 = [Fraction("0.14"), Fraction("0.15")]
    h = [W1[j][0] * x[0] + W1[j][1] * x[1] for j in range(2)]          # 0.85, 0.48
    o = W2[0] * h[0] + W2[1] * h[1]                                    # 0.191
    delta = o - y                                                      # −0.809, hmkcode's Δ
    delta_h = [delta * W2[j] for j in range(2)]
    return {"h": [[v] for v in h], "delta": [[delta]], "dW2": [[delta * h[0], delta * h[1]]],
            "dW1": [[delta_h[j] * x[k] for k in range(2)] for j in range(2)]}


def bracket(matrix, digits: int | None = None) -> str:
    """A matrix as [[…], […]]: exact, or each entry rounded half away from zero to ``digits`` decimals."""
    def cell(v):
        if digits is None:
            return str(v)
        q = Fraction(str(v)) if not isinstance(v, Fraction) else v
        exact = Decimal(q.numerator) / Decimal(q.denominator)
        return str(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    return "[" + ", ".join("[" + ", ".join(cell(v) for v in row) + "]" for row in matrix) + "]"


# -- the issue's own claims ----------------------------------------------------------------------

def test_the_issues_claims_hold(hmk):
    by_hand = hmk_by_hand()
    assert bracket(by_hand["dW1"], 4) == "[[-0.2265, -0.3398], [-0.2427, -0.3641]]"
    v = check_claim(hmk, "dE/dW2 = Delta2 * A1^T")
    assert v.holds and v.kind == "matrix" and v.precision == "all values of its symbols"
    v = check_claim(hmk, "dE/dW1 = [[-0.2265, -0.3398], [-0.2427, -0.3641]]")
    assert v.holds and v.precision == "4 decimals" and v.quantity == "dE/dW1"
    exact = check_claim(hmk, f"dE/dW1 = {bracket(by_hand['dW1'])}")     # the fractions, exactly
    assert exact.holds and exact.precision == "exact"


@pytest.mark.parametrize("claim", [
    r"\frac{\partial E}{\partial W^{(2)}} = \Delta^{(2)} \left(A^{(1)}\right)^\top",
    "∂E/∂W2 = Δ2 A1ᵀ", "dE/dW2 = Delta2 @ A1.T", "dE/dW2 = Delta2 * A1'", "dW2 = dZ2 * A1^T",
    "dE/dW^{(2)} = delta^{(2)} * (A^{(1)})^{T}", "$dE/dW2 = Delta2 \\cdot A1^T$",
    "dE/dW1 = (W2^T * Delta2) * X^T", "dE/dW1 = (W2^T Delta2) ⊙ (1 + 0*Z1) * X^T",
    r"dE/dW1 = \begin{bmatrix} -0.2265 & -0.3398 \\ -0.2427 & -0.3641 \end{bmatrix}",
    "dE/dW1 = [-0.2265, -0.3398; -0.2427, -0.3641]",
    "W1' = W1 - 0.05 * dE/dW1", "W1' = W1 - eta * Delta1 * X^T", "Delta1 = W2^T Delta2", "A1 = W1 X", "Z2 = W2 * Z1",
    "dE/dA2 = A2 - Y",
])
def test_textbook_spellings_hold(hmk, claim):
    v = check_claim(hmk, claim)
    assert v.holds, (claim, v.diagnosis)


def test_mazurs_published_updates_hold_as_matrices(mazur):
    # Mazur (2015): w5+ … w8+ and w1+ … w4+ as printed, W2 one row per output unit
    assert check_claim(mazur, "W2' = [[0.35891648, 0.408666186], [0.511301270, 0.561370121]]").holds
    assert check_claim(mazur, "W1' = [[0.149780716, 0.19956143], [0.24975114, 0.29950229]]").holds
    v = check_claim(mazur, "W2' = [[0.35891648, 0.511301270], [0.408666186, 0.561370121]]")
    assert not v.holds and v.mistake == "transposed" and "Rows and columns are swapped" in v.diagnosis


def test_matrix_algebra_values_hold_on_a_batch(batch):
    """dE/dW1 of the 4-5-1 batch from matrix algebra alone (formulas.matrix_values: X, Y and the parameters in,
    every product by SymPy), written to 6 decimals, holds against the engine's per-unit chain rule."""
    s = batch
    form = matrix_form(s.network)
    values = matrix_values(form, s.network, model(s).exact_steps[0])
    for layer in form.layers:
        dW = values[layer.dW]
        assert check_claim(s, f"dE/dW{layer.layer} = {bracket(dW.tolist(), 6)}").holds
        wrong = dW.T.tolist() if dW.rows != dW.cols else None
        if wrong is not None:
            v = check_claim(s, f"dE/dW{layer.layer} = {bracket(wrong, 6)}")
            assert v.mistake == "transposed", v.diagnosis


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_printed_matrix_formula_holds_for_all_values(example):
    """The matrix form derive prints (matrix algebra, derived.formulas) against the scalar chain rule:
    every formula the checker offers as correct holds, proved for all values of its symbols."""
    s = solve(example)
    m = model(s)
    checked = 0
    for plain in sorted({name.plain for name in matrix_names(m).values()}):
        for lhs in (plain, plain + "'"):
            try:
                q = matrix_quantity(m, parse_lhs(split_claim(tokenize(lhs + " = 0"))[0]))
            except ClaimError:
                continue                    # W1 is given, dE/dW1' is nothing
            formula = q and correct_formula(m, q)
            if formula:
                v = check_claim(s, f"{lhs} = {formula}")
                assert v.holds and v.precision == "all values of its symbols", (lhs, formula, v.diagnosis)
                checked += 1
    assert checked >= 10


# -- the row convention and batches --------------------------------------------------------------

def test_the_row_convention_multiplies_the_other_way(rows):
    assert check_claim(rows, "dE/dW2 = A1^T * Delta2").holds
    assert check_claim(rows, "Delta1 = (Delta2 * W2^T) .* sigma'(Z1)").holds
    assert check_claim(rows, "Z1 = X W1 + b1").holds                     # b1, a row, added to every sample's row
    v = check_claim(rows, "dE/dW2 = Delta2^T * A1")
    assert not v.holds and v.mistake == "transposed" and "one row per sample" in v.diagnosis


def test_a_batch_sums_over_its_samples(batch):
    assert check_claim(batch, "dE/db2 = sum(Delta2)").holds
    assert check_claim(batch, "dE/db2 = Delta2 * 1_N").holds
    assert check_claim(batch, "dE/db2 = Delta2 * 1_5").holds
    v = check_claim(batch, "dE/db2 = Delta2")
    assert not v.holds and v.mistake == "missing_sum" and "to be summed: sum(Delta2)" in v.diagnosis
    v = check_claim(batch, "dE/db2 = Delta2 + A2")
    assert not v.holds and v.mistake == "shapes" and "1×5" in v.diagnosis and "1×1" in v.diagnosis
    # the proof reads the samples' own names: the batch's Σ written out is proved, not just sampled
    assert check_claim(batch, "Delta2 = (A2 - Y) .* A2 .* (1 - A2)").precision == "all values of its symbols"
    assert check_claim(batch, "do/dz_o[2] = o[2]*(1 - o[2])").precision == "all values of its symbols"


def test_softmax_of_a_layer_is_taken_sample_by_sample():
    s = solve("softmax-233")
    assert check_claim(s, "A2 = softmax(Z2)").holds
    assert not check_claim(s, "A2 = sigmoid(Z2)").holds
    assert check_claim(s, "dE/dW2 = (A2 - Y) * A1^T").holds                 # δ = a − y for one-hot targets


# -- diagnoses that are about matrices -----------------------------------------------------------

def test_shapes_that_do_not_multiply_say_which(hmk):
    v = check_claim(hmk, "dE/dW2 = Delta2 * A1")
    assert not v.holds and v.mistake == "transposed"        # the shapes say where, the mistake is the transpose
    assert "Delta2 (1×1) times A1 (2×1) does not multiply" in v.diagnosis and "Delta2 * A1^T would" in v.diagnosis
    v = check_claim(hmk, "dE/dW2 = 1")
    assert v.mistake == "shapes" and "one number, but dE/dW2 is a 1×2 matrix" in v.diagnosis
    v = check_claim(hmk, "dE/dW1 = W1 + [[1, 2, 3]]")
    assert v.mistake == "shapes" and "cannot be added" in v.diagnosis


def test_a_transposed_product_is_named(hmk):
    v = check_claim(hmk, "dE/dW2 = A1 * Delta2")
    assert v.mistake == "transposed" and "transpose of dE/dW2" in v.diagnosis and "Delta2 * A1^T" in v.diagnosis


def test_one_wrong_entry_is_named_with_its_true_value(hmk):
    v = check_claim(hmk, "dE/dW1 = [[-0.2265, -0.3398], [-0.2427, -0.3461]]")
    assert not v.holds and "One entry is wrong" in v.diagnosis and "entry (2, 2), dE/dw4" in v.diagnosis
    assert "-0.36405" in v.diagnosis


def test_the_missing_activation_derivative_and_the_wrong_layer(mazur, hmk):
    v = check_claim(mazur, "Delta1 = W2^T * Delta2")
    assert not v.holds and v.mistake == "missing_activation_derivative" and "every entry" in v.diagnosis
    v = check_claim(hmk, "dE/dW1 = Delta1 * A1^T")
    assert not v.holds and v.mistake == "wrong_input" and "x1" in v.diagnosis


def test_a_matrix_claim_in_reports_and_derivations(tmp_path):
    code, out, _ = run("check", "linear-221", "--claim", "dE/dW2 = Delta2 * A1", "--format", "json")
    claim = json.loads(out)["claims"][0]
    assert code == 3 and claim["kind"] == "matrix" and claim["mistake"] == "transposed"
    assert claim["expected"] == "Delta2 * A1^T" and claim["correct"] == "Delta2 * A1^T"
    sheet = tmp_path / "work.md"
    sheet.write_text("- Delta2 = [[-0.9]]\n- dE/dW2 = [[-0.765, -0.432]]\n", encoding="utf-8")
    code, out, _ = run("check", "linear-221", "--derivation", str(sheet), "--format", "json")
    lines = json.loads(out)["derivations"][0]["lines"]
    # −0.9 · (0.85, 0.48) = (−0.765, −0.432): wrong, but it follows from the student's own line 1
    assert [(x["holds"], x["consistent"], x["uses"]) for x in lines] == [(False, False, []), (False, True, [1])]


# -- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("claim, words", [
    ("W1 = [[1, 2], [3, 4]]", "given by the spec"),
    ("X = W1", "given by the spec"),
    ("Delta1' = Delta1", "only the weights and biases change"),
    ("dE/dW1 = A1^2", "write its transpose as A1^T"),
    ("dE/dW1 = [[1, 2], [3]]", "different lengths"),
    ("dE/dW1 = [[1, 2], [3, ]]", "expected a number"),
    ("dE/dW1 = 1_10000 * 1_10000^T", "too large"),
    ("dE/dW1 = 1_1000 * 1_1000^T", "too large"),                     # 10⁶ entries
    ("dE/dW1 = 1_1000000", "expected the length of the ones vector"),
    ("dE/dW1 = " + "W1 * W1^T * " * 40 + "W1", "too"),
    ("dE/dW1 = " + "(" * 70 + "X" + ")" * 70, "nested too deeply"),
    ("dE/dW1 = [" + ",".join(["1"] * 1000) + "]", "too many symbols"),
    (r"dE/dW1 = \begin{array} 1 \end{array}", "bmatrix"),
], ids=lambda v: v[:40] if isinstance(v, str) else None)
def test_unreadable_or_oversized_matrix_claims_are_refused_fast(hmk, claim, words):
    """Each in one line, fast: a given matrix, a bad literal, products and nestings past the bounds."""
    start = time.perf_counter()
    with pytest.raises(ClaimError) as info:
        check_claim(hmk, claim)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert time.perf_counter() - start < 20          # a bound against a hang, not a benchmark


def test_a_scalar_name_stays_scalar_on_the_left(mazur):
    # b1 is the hidden layer's shared bias in Mazur's network: dE/db1 is the scalar claim it always was
    v = check_claim(mazur, "dE/db1 = 0.0087")
    assert v.kind == "number"


# -- the tutorials' own names ([notation].aliases in the built-in examples) -------------------------

@pytest.mark.parametrize("example, claim", [
    ("linear-221", "Δ = prediction - actual"),                   # hmkcode: Δ = prediction − actual = −0.809
    ("linear-221", "Delta = -0.809"),
    ("sigmoid-222", "dE/dw5 = (o1 - target_o1)*o1*(1 - o1)*h1"),  # Mazur's target_o1 and i1
    ("sigmoid-222", "dE/dw1 = (delta_o1*w5 + delta_o2*w7)*h1*(1 - h1)*i1"),
    # the third seed's O and its own dE/dW_ho = h1 · [(O − Y) * O(1 − O)]ᵀ, W_ho stored 5×1
    ("sigmoid-451-batch", "dE/dW2 = A1 * ((O - Y) .* O .* (1 - O))^T"),
    ("sigmoid-rows-mse", "dE/dA2 = 2/N * (A2 - T)"),             # the second seed's T, with its 2/N
])
def test_a_tutorials_own_names_are_read(example, claim):
    v = check_claim(solve(example), claim)
    assert v.holds, v.diagnosis


# -- found by trying it as students would ------------------------------------------------------------

@pytest.mark.parametrize("example, claim", [
    # matrices of rounded numbers multiplied by hand: each entry is the scalar hand calculation it stands for,
    # within what its factors' rounding allows (δ_o1 = 0.1385, δ_o2 = −0.0381, h1 = 0.5933, h2 = 0.5969)
    ("sigmoid-222", "dE/dW2 = [[0.1385], [-0.0381]] [[0.5933, 0.5969]]"),
    ("linear-221", "dE/dW2 = -0.81 * [[0.85, 0.48]]"),                  # δ = −0.809 to 2 decimals
    ("linear-221", "dE/dW2 = [[-0.81]] [[0.85, 0.48]]"),
    ("linear-221", "dE/dW1 = [[-0.113], [-0.121]] [[2, 3]]"),           # δ_h = −0.809·(0.14, 0.15)
    ("linear-221", "W1' = [[0.11, 0.21], [0.12, 0.08]] - 0.05 [[-0.23, -0.34], [-0.24, -0.36]]"),
    # the spellings of derive's own documents and of single-sample textbooks
    ("linear-221", r"\frac{\partial E}{\partial W^{(2)}} = \Delta^{(2)} A^{(1)\mathsf{T}}"),
    ("linear-221", r"dE/dW2 = \Delta^{(2)} A^{(1)T}"),
    ("sigmoid-451-batch", r"dE/db2 = \Delta^{(2)} \mathbf{1}_{5}"),
    # the third seed's matrices as it writes them (W_ih 4×5, Z1 = W_ihᵀ X + b_ih) and as derive prints them
    ("sigmoid-451-batch", "Z1 = W1^T X + b1"),
    ("sigmoid-451-batch", "dE/dW1 = X * Delta1^T"),
    ("sigmoid-451-batch", r"\frac{\partial E}{\partial W^{(1)}} = X \Delta^{(1)\mathsf{T}}"),
    ("sigmoid-451-batch", "Delta1 = (W2 Delta2) .* A1 .* (1 - A1)"),
    ("sigmoid-451-batch", "W1' = W1 - 0.5 * X Delta1^T"),
    ("tanh-231", "Delta1 = (W2^T Delta2) .* (1 - A1.^2)"),
    ("tanh-231", r"Delta1 = (W2^T Delta2) .* (1 - A1^{\circ 2})"),
    ("sigmoid-222", "dE/dW2 = delta2 a1^T"),
    ("sigmoid-222", "z1 = W1 x + b1"),
    ("sigmoid-222", r"\delta^{(2)} = (a^{(2)} - y) .* a^{(2)} .* (1 - a^{(2)})"),
])
def test_what_students_write_holds(example, claim):
    v = check_claim(solve(example), claim)
    assert v.holds, (claim, v.diagnosis)


@pytest.mark.parametrize("example, claim, mistake, words", [
    ("linear-221", "dE/dW2 = -0.81 * [[0.85, 0.61]]", "wrong_intermediate", "0.61 is no value of this network"),
    # a column ⊙ a row is no entrywise product (numpy would broadcast it into the outer product)
    ("sigmoid-222", r"dE/dW2 = Delta2 \circ A1^T", "shapes", "entry by entry needs the same shape"),
    ("sigmoid-222", "b1' = b1 - eta*dE/db1", "frozen", "b1' = b1"),
    # shapes that fit (5 hidden units, 5 samples), so only the mathematics can tell; the third seed's network
    # with W stored out × in (column), and as the seed stores it (in × out, used as Wᵀ: convention "transposed")
    # (both carry the seed's [notation].symbols, so the messages name its h1 and W_ih)
    (SEED3_COLUMN, "dE/dW2 = Delta2 A1", "transposed", "h1 stands where h1^T belongs"),
    ("sigmoid-451-batch", "dE/dW2 = A1^T Delta2^T", "transposed", "h1^T stands where h1 belongs"),
    ("sigmoid-451-batch", "dE/dW1 = Delta1 X^T", "transposed", "W(l) is n(l-1)×n(l) and used as W(l)^T"),
    ("sigmoid-451-batch", "Z1 = W1 X + b1", "transposed", "W_ih^T * X would"),
    ("sigmoid-rows-mse", "dE/dW1 = X Delta1", "transposed", "X stands where X^T belongs"),
    ("linear-221", "W1' = W1 - 0.05 * dE/dW1^T", "transposed", "dE/dW1^T stands where dE/dW1 belongs"),
    (SEED3_COLUMN, "Delta1 = (W2^T Delta2) * sigma'(Z1)", "matrix_product_for_entrywise", "entry by entry here"),
    ("sigmoid-451-batch", "Delta1 = (W2 Delta2) * sigma'(Z1)", "matrix_product_for_entrywise", "entry by entry here"),
    ("relu-231", "dE/dW2 = Delta2 X^T", "wrong_layer", "X stands where A1 belongs"),
    ("relu-231", "dE/db1 = Delta1", "missing_sum", "one column per sample, to be summed"),
    ("sigmoid-rows-mse", "dE/db1 = Delta1", "missing_sum", "one row per sample"),
])
def test_what_students_get_wrong_is_named(example, claim, mistake, words):
    v = check_claim(solve(example), claim)
    assert not v.holds and v.mistake == mistake and words in v.diagnosis, v.diagnosis


def test_messages_quote_the_claim_as_written():
    v = check_claim(solve("sigmoid-451-batch"), "dE/db1 = sum(sum(Delta1)) + X")
    assert "sum(sum(Delta1)) + X (4×5)" in v.diagnosis or "sum(sum(Delta1))" in v.diagnosis
    v = check_claim(solve("relu-231"), "dE/dW1 = Delta2 X^T + W2")
    assert "Delta2 X^T" in v.diagnosis and "Delta2X" not in v.diagnosis


def test_one_number_written_with_matrices():
    """E = ½ Σ (A2 − Y)⊙(A2 − Y): a scalar claim whose right side is a 1×1 matrix, proved like any other."""
    v = check_claim(solve("sigmoid-451-batch"), "E = 0.5 * sum((A2 - Y) .* (A2 - Y))")
    assert v.holds and v.precision == "all values of its symbols"
    assert check_claim(solve("sigmoid-222"), "E = 1/2 * 1_2^T ((A2 - Y) .* (A2 - Y))").holds
    v = check_claim(solve("sigmoid-222"), "dE/dw5 = W2")
    assert not v.holds and v.mistake == "shapes" and "W2 is 2×2, but dE/dw5 is one number" in v.diagnosis


# -- found in a second pass as students -------------------------------------------------------------

@pytest.mark.parametrize("example, claim", [
    ("tanh-231", "Delta2 = -0.5226"),            # a 1×1 matrix claimed as a bare number, to its 4 decimals
    ("linear-221", "Delta2 = -0.81"),            # hmkcode's Δ = −0.809 to 2 decimals
    ("sigmoid-rows-mse", "dE/dw1_21 = sum(delta1_1*x2)"),    # delta1_1 is a unit's δ, not the matrix delta1
    ("sigmoid-222", "E = 0.5 * sum((A2 - Y) .* (A2 - Y))"),   # one number: sum(…) adds every entry
    ("sigmoid-222", "E = 0.5 * sum((A2 - Y).^2)"),
    ("softmax-233", "E = -sum(Y .* log(A2))"),
    ("softmax-233", "A2 = exp(Z2) ./ (1_3 * 1_3^T * exp(Z2))"),
])
def test_second_pass_claims_hold(example, claim):
    v = check_claim(solve(example), claim)
    assert v.holds, (claim, v.diagnosis)


def test_mazurs_total_error_written_with_matrices_is_his_number():
    v = check_claim(solve("sigmoid-222"), "E = 0.5 * sum((A2 - Y).^2)")
    assert v.holds and v.precision == "all values of its symbols"
    assert check_claim(solve("sigmoid-222"), "E = 0.298371109").holds           # Mazur's E_total


def test_a_matrix_formula_right_for_this_n_only_does_not_hold():
    # MSE's 2/N is 1 for the second seed's N = 2: neither the matrix nor the scalar written with matrices holds
    s = solve("sigmoid-rows-mse")
    for claim in ("Delta2 = (A2 - T) .* A2 .* (1 - A2)", "E = 0.5 * sum((A2 - T).^2)"):
        v = check_claim(s, claim)
        assert not v.holds and v.mistake == "this_n_only", (claim, v.diagnosis)


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_name_of_the_notation_table_is_read(example):
    """Each plain name the documents list for the matrix form (W1, sigmoid'(Z1), linear(Z1), 1_5, a2_n …) is
    read in a claim: a verdict, never 'unknown name'."""
    s = solve(example)
    for name in matrix_form(s.network).names.values():
        assert check_claim(s, f"Z1 = {name.plain}").kind == "matrix", name.plain


def test_the_softmax_jacobian_as_the_documents_write_it():
    s = solve("softmax-233")
    v = check_claim(s, "delta2_n = (diag(a2_n) - a2_n * a2_n^T) * dE/da2_n")
    assert v.holds and v.precision == "all values of its symbols"
    assert not check_claim(s, "delta2_n = a2_n .* dE/da2_n").holds        # the diagonal alone: a sigmoid's rule
    assert check_claim(solve("linear-221"), "Delta1 = (W2^T Delta2) .* linear'(Z1)").holds


@pytest.mark.parametrize("claim, words", [
    ("Delta2 = [[sqrt(-1)]]", "not a real number"),
    ("dE/dW2 = [[(-8)^(1/3), 0]]", "not a real number"),
    ("dE/dW1 = diag(1_10000)", "too large"),
])
def test_matrix_entries_that_are_no_number_are_refused(hmk, claim, words):
    with pytest.raises(ClaimError) as info:
        check_claim(hmk, claim)
    assert words in str(info.value) and str(info.value).count("claim '") == 1


def test_a_long_wrong_claim_is_judged_fast(hmk):
    """Each changed reading of a wrong claim (a transpose, another layer) is tried a bounded number of times."""
    start = time.perf_counter()
    v = check_claim(hmk, "dE/dW1 = " + " + ".join(["W1"] * 200))
    assert not v.holds and time.perf_counter() - start < 20          # a bound against a hang, not a benchmark
