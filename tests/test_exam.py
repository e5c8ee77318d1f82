"""derive exam: variants, answers re-derived independently, files (JSON, Moodle XML, LaTeX), bad input."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sympy as sp

from derive import load, solve
from derive.cli import main
from derive.errors import ExamError, SpecError
from derive.exam.generate import generate
from derive.exam.sheets import Options, documents
from derive.model.spec import example_names, example_text, loads, parse

ROOT = Path(__file__).resolve().parent.parent


# -- an independent reference: a float forward pass written from the definitions, finite differences --

def act(name, zs, slope=0.01):
    if name == "softmax":
        top = max(zs)
        e = [math.exp(z - top) for z in zs]
        return [v / sum(e) for v in e]
    f = {"linear": lambda z: z, "sigmoid": lambda z: 1 / (1 + math.exp(-z)), "tanh": math.tanh,
         "relu": lambda z: max(z, 0.0), "leaky_relu": lambda z: z if z > 0 else slope * z,
         "softplus": lambda z: math.log1p(math.exp(z))}[name]
    return [f(z) for z in zs]


def loss_of(name, outputs, targets):
    """DESIGN.md's table of losses, summed over samples (outputs[n][j])."""
    N, J = len(outputs), len(outputs[0])
    sq = sum((y - o) ** 2 for os_, ys in zip(outputs, targets) for o, y in zip(os_, ys))
    if name == "half_sse":
        return sq / 2
    if name == "sse":
        return sq
    if name == "mse":
        return sq / (N * J)
    if name == "quadratic":
        return sq / (2 * N)
    if name == "bce":
        return -sum(y * math.log(o) + (1 - y) * math.log(1 - o)
                    for os_, ys in zip(outputs, targets) for o, y in zip(os_, ys)) / (N * J)
    if name == "cross_entropy":
        return -sum(y * math.log(o) for os_, ys in zip(outputs, targets) for o, y in zip(os_, ys)) / N
    raise ValueError(name)


class Reference:
    """The variant's spec as plain floats: W[l][j][k] (column form), b[l][j], forward pass, loss, gradients."""

    def __init__(self, raw):
        net = raw["network"]
        self.layers, self.loss = net["layers"], net["loss"]
        self.acts = net["activation"] if isinstance(net["activation"], list) else [net["activation"]] * (
            len(self.layers) - 1)
        self.bias = net.get("bias", "none")
        self.in_by_out = net.get("convention", "column") in ("row", "transposed")      # W given input × output
        self.slope = float(net.get("slope", 0.01))
        self.x = [[float(v) for v in r] for r in raw["data"]["x"]]
        self.y = [[float(v) for v in r] for r in raw["data"]["y"]]
        self.rate = float(raw["train"]["learning_rate"])
        init = raw["init"]
        self.W, self.b = [], []
        for l in range(1, len(self.layers)):
            W = [[float(v) for v in r] for r in init[f"W{l}"]]
            self.W.append([list(c) for c in zip(*W)] if self.in_by_out else W)
            b = init.get(f"b{l}")
            n = self.layers[l]
            self.b.append([0.0] * n if b is None else [float(b)] * n if not isinstance(b, list) else
                          [float(v) for v in b])

    def passes(self, W=None, b=None):
        W, b = W or self.W, b or self.b
        out = []
        for x in self.x:
            a, layers = x, []
            for l, name in enumerate(self.acts):
                z = [sum(w * ak for w, ak in zip(row, a)) + b[l][j] for j, row in enumerate(W[l])]
                a = act(name, z, self.slope)
                layers.append((z, a))
            out.append(layers)
        return out

    def total_loss(self, W=None, b=None):
        return loss_of(self.loss, [p[-1][1] for p in self.passes(W, b)], self.y)

    def gradient(self, where, h=1e-6):
        """Central difference of the loss in one parameter: ("W", l, j, k) or ("b", l, j) (shared: every j)."""
        def shifted(d):
            W = [[row[:] for row in layer] for layer in self.W]
            b = [layer[:] for layer in self.b]
            if where[0] == "W":
                _, l, j, k = where
                W[l][j][k] += d
            else:
                _, l, j = where
                for jj in (range(len(b[l])) if self.bias == "shared" else [j]):
                    b[l][jj] += d
            return self.total_loss(W, b)
        return (shifted(h) - shifted(-h)) / (2 * h)


def locate(sol, plain):
    """Where a parameter sits in the network, found by name only (the values come from the reference)."""
    net = sol.network
    for l, layer in enumerate(net.weights):
        for j, row in enumerate(layer):
            for k, w in enumerate(row):
                if net.names[w].plain == plain:
                    return ("W", l, j, k)
    for l, layer in enumerate(net.biases):
        for j, b in enumerate(layer):
            if net.names[b].plain == plain:
                return ("b", l, j)
    raise KeyError(plain)


def unit(sol, plain):
    net = sol.network
    for l in range(len(net.nets)):
        for j in range(len(net.nets[l])):
            if net.names[net.nets[l][j]].plain == plain:
                return l, j, 0
            if net.names[net.activations[l][j]].plain == plain:
                return l, j, 1
    raise KeyError(plain)


def reference_answer(sol, ref, q):
    """The true value of a numerical question, from the reference alone."""
    quantity = q["quantity"]
    if q["kind"] == "forward":
        name = quantity.split("[")[0]
        l, j, which = unit(sol, name)
        return ref.passes()[0][l][which][j]
    if quantity == "E":
        return ref.total_loss()
    if quantity.startswith("dE/d"):
        return ref.gradient(locate(sol, quantity[4:]))
    if quantity.endswith("'"):
        where = locate(sol, quantity[:-1])
        value = ref.W[where[1]][where[2]][where[3]] if where[0] == "W" else ref.b[where[1]][where[2]]
        return value - ref.rate * ref.gradient(where)
    raise AssertionError(quantity)


def matrix_shape(raw, matrix):
    """The shape of a matrix of the batch matrix form by the rule: A^(l) is n_l × N (row convention: N × n_l),
    W^(l) n_l × n_{l−1} (row and transposed conventions: n_{l−1} × n_l, as the spec gives it)."""
    n, N = raw["network"]["layers"], len(raw["data"]["x"])
    convention = raw["network"].get("convention", "column")

    def A(l):
        return (N, n[l]) if convention == "row" else (n[l], N)

    def W(l):
        return (n[l - 1], n[l]) if convention in ("row", "transposed") else (n[l], n[l - 1])

    if " " in matrix:       # W^(l)T Δ^(l) (row: Δ^(l) W^(l)T; transposed: W^(l) Δ^(l)): the error sent back to l − 1
        return A(int(re.search(r"Delta(\d+)", matrix)[1]) - 1)
    kind, l, transposed = re.fullmatch(r"(Delta|dE/dW|W|A)(\d+)(T?)", matrix).groups()
    shape = {"Delta": A, "dE/dW": W, "W": W, "A": A}[kind](int(l))
    return shape[::-1] if transposed else shape


def places_of(q):
    """The decimals a numerical answer is given to."""
    return len(q["display"].split(".")[1])


def check_against_reference(variant, decimals=4):
    """Every answer of one variant (an answers.json object) against the reference and the checker."""
    from derive.check.verdict import check_claim

    sol = solve(variant["spec"])
    ref = Reference(variant["spec"])
    for q in variant["questions"]:
        if q["kind"] == "shape":
            rows, cols = map(int, q["answer"].split("x"))
            assert (rows, cols) == matrix_shape(variant["spec"], q["quantity"][6:-1]), q
            continue
        assert check_claim(sol, f"{q['quantity']} = {q['display']}").holds, q
        if q["kind"] == "formula":
            # our own generated text (not user input), evaluated at the reference's forward pass of every sample
            text = q["answer"]
            batch = text.startswith("sum(")
            text = text[4:-1] if batch else text
            names = [n.plain for n in sol.network.names.values()]
            functions = {"sigmoid": lambda u: 1 / (1 + sp.exp(-u)), "softplus": lambda u: sp.log(1 + sp.exp(u))}
            expr = sp.sympify(text.replace("relu'", "Heaviside"), locals={**{n: sp.Symbol(n) for n in names},
                                                                          **functions, "N": sp.Symbol("N")})
            expr = expr.subs(sp.Symbol("N"), len(ref.x))         # the number of samples, written as N
            total = 0.0
            for n, passes in enumerate(ref.passes()):
                values = {}
                for name in names:
                    try:
                        l, j, which = unit(sol, name)
                    except KeyError:
                        continue
                    values[name] = passes[l][which][j]
                values.update({f"x{k + 1}": v for k, v in enumerate(ref.x[n])})
                values.update({("y" if len(ref.y[n]) == 1 else f"y{j + 1}"): v for j, v in enumerate(ref.y[n])})
                for p in sol.network.parameters:
                    where = locate(sol, sol.network.names[p].plain)
                    values[sol.network.names[p].plain] = (ref.W[where[1]][where[2]][where[3]] if where[0] == "W"
                                                          else ref.b[where[1]][where[2]])
                total += float(expr.subs({sp.Symbol(k): v for k, v in values.items()}))
            assert batch == (len(ref.x) > 1)
            assert total == pytest.approx(ref.gradient(locate(sol, q["quantity"][4:])), abs=1e-7), q
            for d in q["distractors"]:
                assert not check_claim(sol, f"{q['quantity']} = {d['formula']}").holds, d
            continue
        true = reference_answer(sol, ref, q)
        # an update with a small step may ask up to two decimals more, and says so in its prompt
        places = places_of(q)
        assert places == decimals or (q["kind"] == "update" and decimals < places <= decimals + 2
                                      and f"Give it to {places} decimal places." in q["prompt"]), q
        assert abs(q["answer"] - true) <= 0.5 * 10 ** -places + 1e-8, (q, true)
        assert q["display"] == f"{q['answer']:.{places}f}"
        assert q["tolerance"] >= 0.5 * 10 ** -places
        if q["kind"] == "choice":
            options = q["options"]
            assert len(options) == 4 and len(set(options)) == 4, q
            assert options["abcd".index(q["correct"])] == q["answer"]
            for d in q["distractors"]:
                assert abs(d["value"] - q["answer"]) > q["tolerance"], q
                assert d["display"] == f"{d['value']:.{decimals}f}" and abs(d["value"]) >= 10 ** (1 - decimals)
                assert not check_claim(sol, f"{q['quantity']} = {d['display']}").holds, d
            values = sorted(options)
            assert all(b - a > 0.5 * 10 ** -decimals for a, b in zip(values, values[1:])), q


# -- generation ------------------------------------------------------------------------------------

SOFTPLUS = """
[network]
layers = [2, 3, 1]
activation = ["softplus", "linear"]
bias = "neuron"
loss = "mse"
[data]
x = [[0.5, -0.2], [0.1, 0.3]]
y = [[0.2], [0.7]]
[init]
seed = 4
"""


def test_a_softplus_network_gets_its_exam():
    # the checker's typical mistakes once stopped on softplus (σ(z) has no a to write as z): a traceback, no files
    exam = generate(loads(SOFTPLUS, "softplus.toml"), variants=3, seed=5, jobs=1)
    for variant in exam.json():
        check_against_reference(variant)


def test_answers_hold_independently_for_every_example():
    """Two variants of every built-in example: each answer matches the reference and derive check."""
    for name in example_names():
        exam = generate(load(name), variants=2, seed=11, jobs=1)
        for variant in exam.json():
            check_against_reference(variant)


@pytest.mark.parametrize("name", ["sigmoid-222", "tanh-231", "relu-231", "softmax-233", "linear-221"])
def test_no_degenerate_variant_over_many_seeds(name):
    exam = generate(load(name), variants=20, seed=2024, jobs=2)
    seen_specs, seen_answers = set(), set()
    for variant in exam.json():
        raw = variant["spec"]
        ref = Reference(raw)
        for p in ref.passes():
            for (z, a), fn in zip(p, ref.acts):
                if fn == "sigmoid":
                    assert all(abs(v) <= 4 for v in z), (variant["variant"], z)
                if fn == "tanh":
                    assert all(abs(v) <= 2 for v in z), (variant["variant"], z)
        if "relu" in ref.acts:
            for l, fn in enumerate(ref.acts):
                if fn == "relu":
                    for j in range(ref.layers[l + 1]):
                        assert any(p[l][0][j] > 0 for p in ref.passes()), "dead ReLU"
        numeric = [q for q in variant["questions"] if isinstance(q["answer"], float)]
        for q in numeric:       # gradients: two significant digits at 4 decimals; nothing rounds to 0
            assert abs(q["answer"]) >= (10 ** -3 if q["kind"] in ("gradient", "choice") else 10 ** -4), q
        key = json.dumps([raw["data"], raw["init"]])
        answers = tuple(q["display"] for q in numeric)
        assert key not in seen_specs and answers not in seen_answers
        seen_specs.add(key)
        seen_answers.add(answers)
    # the answers really vary: no numerical question has the same answer in every variant
    for i, q in enumerate(exam.json()[0]["questions"]):
        if isinstance(q["answer"], float):
            assert len({v["questions"][i]["display"] for v in exam.json()}) > 1


def test_jobs_and_only_do_not_change_a_variant():
    template = load("sigmoid-222")
    one = generate(template, variants=6, seed=5, jobs=1).json()
    two = generate(template, variants=6, seed=5, jobs=2).json()
    assert one == two
    assert generate(template, variants=6, seed=5, only=4, jobs=1).json() == [one[3]]


def test_exam_table_chooses_values_activations_losses_and_questions():
    text = """
[network]
layers = [2, 2, 1]
activation = "sigmoid"
bias = "neuron"
[data]
x = [[1, 2]]
y = [[1]]
[exam]
x = [0.5, 1]
y = {min = 0.2, max = 0.8, step = 0.3}
W = {min = -0.4, max = 0.4, step = 0.2}
b2 = 0.1
learning_rate = [0.1, 0.2]
activation = ["sigmoid", ["tanh", "linear"]]
loss = ["half_sse", "mse"]
questions = ["gradient:w5", "update:W1", "choice:b1", "forward:h2", "shape:dW1", "formula:w1"]
decimals = 3
tolerance = 0.002
"""
    exam = generate(loads(text, "t.toml"), variants=12, seed=3, jobs=1)
    kinds = set()
    for variant in exam.json():
        raw = variant["spec"]
        assert all(v in (0.5, 1) for v in raw["data"]["x"][0])
        assert raw["data"]["y"][0][0] in (0.2, 0.5, 0.8)
        assert all(w in (-0.4, -0.2, 0.2, 0.4) for row in raw["init"]["W1"] + raw["init"]["W2"] for w in row)
        assert raw["init"]["b2"] == [0.1]
        assert raw["train"]["learning_rate"] in (0.1, 0.2)
        kinds.add((tuple(raw["network"]["activation"]), raw["network"]["loss"]))
        qs = variant["questions"]
        assert [q["quantity"] for q in qs][0] == "dE/dw5"
        assert qs[1]["quantity"] in ("w1'", "w2'", "w3'", "w4'")
        assert qs[2]["quantity"] == "dE/db1" and qs[3]["quantity"] == "h2"
        assert qs[4]["quantity"] == "shape(dE/dW1)" and qs[4]["answer"] == "2x2"
        # an update's tolerance may be tighter: at most a quarter of its step (checked in check_against_reference)
        assert all(q["tolerance"] == 0.002 for q in qs if isinstance(q["answer"], float) and q["kind"] != "update")
        assert qs[1]["tolerance"] <= 0.002
        check_against_reference(variant, decimals=3)
    assert len(kinds) > 1                 # activations and losses are drawn too


def test_the_third_seeds_shapes_are_asked_as_it_stores_w():
    """sigmoid-451-batch stores W1 4×5 and W2 5×1 (convention "transposed"): the sheet's matrix form is the
    seed's (Z = Wᵀ A + b, ∂E/∂W = A Δᵀ, Δ = (W Δ) ⊙ f′) and every shape is the stored one, written here by hand."""
    text = load("sigmoid-451-batch").raw
    raw = {**text, "exam": {"questions": ["shape:dW1", "shape:dW2", "shape:W1T", "shape:W2T", "shape:WTdelta2",
                                          "shape:Delta1", "shape:A1"]}}
    exam = generate(parse(raw, "seed3.toml"), variants=1, seed=1, jobs=1)
    variant = exam.json()[0]
    answers = {q["quantity"]: q["answer"] for q in variant["questions"]}
    assert answers == {"shape(dE/dW1)": "4x5", "shape(dE/dW2)": "5x1", "shape(W1T)": "5x4", "shape(W2T)": "1x5",
                       "shape(W2 Delta2)": "5x5", "shape(Delta1)": "5x5", "shape(A1T)": "5x5"}
    assert variant["spec"]["network"]["convention"] == "transposed"
    assert [len(variant["spec"]["init"]["W1"]), len(variant["spec"]["init"]["W1"][0])] == [4, 5]
    check_against_reference(variant)
    sheet = exam.variants[0].questions[0].displays
    assert r"Z^{(l)} = W^{(l)\mathsf{T}} A^{(l-1)} + b^{(l)}" in sheet[0]
    assert r"\frac{\partial E}{\partial W^{(l)}} = A^{(l-1)} \Delta^{(l)\mathsf{T}}" in sheet[1]
    assert r"\left(W^{(l)} \Delta^{(l)}\right)" in sheet[2]


@pytest.mark.parametrize("table, field", [
    ("W = {min = 1, max = 0, step = 0.1}", "[exam].W"),
    ("questions = [\"integral\"]", "[exam].questions"),
    ("questions = [\"gradient:w99\"]", "[exam].questions"),
    ("loss = \"cross_entropy\"\nactivation = \"tanh\"", "[exam].loss"),
    ("decimals = 20", "[exam].decimals"),
    ("colour = 1", "[exam].colour"),
    ("tolerance = \"-3%\"", "[exam].tolerance"),
])
def test_bad_exam_table_is_one_line_naming_the_field(table, field):
    text = f'[network]\nlayers = [2, 2, 1]\n[data]\nx = [1, 2]\ny = [1]\n[exam]\n{table}\n'
    with pytest.raises(SpecError) as info:
        generate(loads(text, "t.toml"), variants=1)
    assert field in str(info.value) and "\n" not in str(info.value)


# -- files ----------------------------------------------------------------------------------------

def run_cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT, timeout=600)


def read_all(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def test_cli_is_byte_identical_across_runs_and_processes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    first = run_cli(["exam", "sigmoid-222", "--variants", "5", "--seed", "9", "--out", str(a), "--jobs", "1"],
                    env={"PYTHONHASHSEED": "1"})
    assert first.returncode == 0, first.stderr
    second = run_cli(["exam", "sigmoid-222", "--variants", "5", "--seed", "9", "--out", str(b), "--jobs", "2"],
                     env={"PYTHONHASHSEED": "2"})
    assert second.returncode == 0, second.stderr
    files = read_all(a)
    assert files == read_all(b)
    assert {"answers.json", "moodle.xml", "sheets.tex", "sheet-01.tex", "sheet-05.md", "key-03.tex", "key-03.md",
            "variant-05.toml"} <= set(files)
    # --only 3 regenerates variant 3's own files byte for byte, and nothing else
    c = tmp_path / "c"
    only = run_cli(["exam", "sigmoid-222", "--variants", "5", "--seed", "9", "--out", str(c), "--only", "3"])
    assert only.returncode == 0, only.stderr
    alone = read_all(c)
    assert set(alone) == {"variant-03.toml", "sheet-03.tex", "sheet-03.md", "key-03.tex", "key-03.md"}
    assert all(data == files[name] for name, data in alone.items())
    assert b"--only 3" in files["sheet-03.tex"] and b"variant seed" in files["sheet-03.tex"]
    # so it can be run in the full exam's folder, which keeps its answers.json and moodle.xml
    only = run_cli(["exam", "sigmoid-222", "--variants", "5", "--seed", "9", "--out", str(a), "--only", "3"])
    assert only.returncode == 0, only.stderr
    assert read_all(a) == files


def test_the_printed_command_regenerates_a_lost_sheet_from_the_exams_folder(tmp_path):
    """The sheet's command names the template as seen from the exam's folder and writes into it (--out .):
    an examiner who lost sheet 2 runs it there and gets the same bytes back."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "midterm.toml").write_text(example_text("sigmoid-222"), encoding="utf-8")
    out = tmp_path / "exams" / "mid"
    done = subprocess.run([sys.executable, "-m", "derive", "exam", "specs/midterm.toml", "--variants", "3",
                           "--seed", "4", "--out", "exams/mid", "--format", "md"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert done.returncode == 0, done.stderr
    lost = (out / "sheet-02.md").read_bytes()
    command = re.search(r"Regenerate this variant alone: `([^`]*)`", lost.decode()).group(1)
    assert command == "derive exam ../../specs/midterm.toml --variants 3 --seed 4 --only 2 --out ."
    (out / "sheet-02.md").unlink()
    again = subprocess.run([sys.executable, "-m", *shlex.split(command), "--format", "md"], capture_output=True,
                           text=True, cwd=out, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert again.returncode == 0, again.stderr
    assert (out / "sheet-02.md").read_bytes() == lost


def test_a_new_exam_replaces_the_files_of_an_earlier_one(tmp_path):
    """Three variants written over a folder of five: keys 4 and 5 go, a teacher's own file stays."""
    out = tmp_path / "exam"
    for n in ("5", "3"):
        done = run_cli(["exam", "sigmoid-222", "--variants", n, "--seed", "2", "--out", str(out), "--format", "md"])
        assert done.returncode == 0, done.stderr
        (out / "notes.txt").write_text("mine")
    names = set(read_all(out))
    assert names == {"answers.json", "notes.txt"} | {f"{kind}-0{k}.{ext}" for k in (1, 2, 3)
                                                     for kind, ext in (("sheet", "md"), ("key", "md"), ("variant", "toml"))}
    assert len(json.loads((out / "answers.json").read_text())) == 3


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One exam of a hostile template written to disk: its title and intro try to break every format."""
    folder = tmp_path_factory.mktemp("exam")
    spec = folder / "evil.toml"
    spec.write_text(r'''
title = "</text></name><x>{1:NUMERICAL:=1:1} \\input{/etc/passwd} $x$ & 50% ]]> --"
[network]
layers = [2, 2, 2]
activation = "sigmoid"
bias = "neuron"
[data]
x = [0.5, 1]
y = [0.2, 0.8]
[exam]
intro = "Use a calculator. {#1} ~ \\end{document} <script>alert(1)</script>"
''', encoding="utf-8")
    out = folder / "out"
    assert main(["exam", str(spec), "--variants", "3", "--seed", "1", "--out", str(out), "--jobs", "1"]) == 0
    return out


def test_answers_json_schema_and_independent_answers(written):
    variants = json.loads((written / "answers.json").read_text(encoding="utf-8"))
    assert [v["variant"] for v in variants] == [1, 2, 3]
    for v in variants:
        assert set(v) >= {"variant", "seed", "spec", "questions"}
        assert isinstance(v["seed"], int)
        for q in v["questions"]:
            assert set(q) >= {"id", "prompt", "quantity", "answer", "tolerance"}
        # the spec is complete: derive reads it back as it is, and the TOML beside it is the same spec
        assert solve(v["spec"]).spec.weights == load(str(written / f"variant-0{v['variant']}.toml")).weights
        check_against_reference(v)


def test_moodle_xml_parses_and_carries_every_variant(written):
    root = ET.parse(written / "moodle.xml").getroot()
    variants = json.loads((written / "answers.json").read_text(encoding="utf-8"))
    questions = [q for q in root if q.get("type") == "cloze"]
    assert len(questions) == len(variants)
    assert root[0].get("type") == "category"
    for element, variant in zip(questions, variants):
        text = element.find("questiontext/text").text
        assert "<script>" not in text and "{1:NUMERICAL:=1:1}" not in text
        assert text.count("{1:") == len(variant["questions"])     # the user's "{1:…}" opened no field
        for q in variant["questions"]:
            if q["kind"] in ("forward", "loss", "gradient", "update"):
                fields = re.findall(r"\{1:NUMERICAL:=([-0-9.]+):([0-9.]+)[~}]", text)   # plain decimals, no 5e-05
                assert (q["answer"], q["tolerance"]) in [(float(a), float(t)) for a, t in fields], q
            if q["kind"] == "choice":
                assert f"={q['display']}" in text


def compile_tex(path: Path) -> None:
    if shutil.which("pdflatex") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdflatex is missing in CI (install texlive-latex-extra)")
        pytest.skip("pdflatex is not installed")
    for _ in range(2):
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", path.name], cwd=path.parent,
                                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stdout[-3000:]
    assert path.with_suffix(".pdf").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sheets.tex", "key-01.tex"])
def test_latex_compiles(written, tmp_path, name):
    shutil.copy(written / name, tmp_path / name)
    compile_tex(tmp_path / name)
    assert r"\input{/etc/passwd}" not in (written / name).read_text(encoding="utf-8")


@pytest.mark.slow
def test_latex_compiles_in_the_indexed_row_notation(tmp_path):
    """Indexed names (w^{(1)}_{12}', a^{(1)}_2) and the row convention in a sheet and a key."""
    out = tmp_path / "out"
    assert main(["exam", "sigmoid-rows-mse", "--out", str(out), "--format", "tex", "--seed", "3"]) == 0
    for name in ("sheet-01.tex", "key-01.tex"):
        compile_tex(out / name)


def test_markdown_math_parses_in_katex_strict_mode(written, tmp_path):
    """Every formula of the Markdown sheets and keys, for the sequential and the indexed notation."""
    probe = ("try{require.resolve('katex')}catch(e){require(require('path').join("
             "require('child_process').execSync('npm root -g').toString().trim(),'katex'))}")
    if not shutil.which("node") or subprocess.run(["node", "-e", probe], capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("node with the katex npm package is missing in CI")
        pytest.skip("node with the katex npm package is not installed")
    files = [str(p) for p in sorted(written.glob("*-01.md"))]
    for name in ("relu-231", "sigmoid-rows-mse"):           # ReLU's step; indexed names in the row convention
        out = tmp_path / name
        assert main(["exam", name, "--out", str(out), "--format", "md", "--seed", "2"]) == 0
        files += [str(p) for p in sorted(out.glob("*.md"))]
    result = subprocess.run(["node", str(ROOT / "tests" / "katex_check.js"), *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_markdown_escapes_user_text(written):
    sheet = (written / "sheet-01.md").read_text(encoding="utf-8")
    assert "<script>" not in sheet and "$x$" not in sheet


def test_impossible_constraints_stop_with_one_line_and_write_nothing(tmp_path, capsys):
    spec = tmp_path / "hot.toml"
    spec.write_text("""
[network]
layers = [2, 2, 1]
activation = "sigmoid"
[data]
x = [1, 1]
y = [0.5]
[exam]
x = [3, 4]
W = {min = 2, max = 3, step = 0.5}
tries = 300
""", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["exam", str(spec), "--variants", "4", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("derive: error: hot.toml: [exam]:")
    assert "saturated sigmoid" in err and "300 draws" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [spec]


def test_too_few_distinct_variants_is_an_error():
    text = """
[network]
layers = [1, 1]
activation = "linear"
[data]
x = [1]
y = [0.5]
[exam]
x = [1]
y = [0.5]
W = [0.25, -0.25]
questions = ["gradient"]
"""
    with pytest.raises(ExamError, match="no two variants alike"):
        generate(loads(text, "few.toml"), variants=3, jobs=1)


def test_broken_user_template_is_one_line_and_nothing_written(tmp_path, capsys):
    templates = tmp_path / "t"
    templates.mkdir()
    (templates / "exam.sheet.md.j2").write_text("{{ nothing_here }}", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["exam", "linear-221", "--out", str(out), "--format", "md", "--template-dir", str(templates)])
    assert code == 1 and not out.exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_progress_on_stderr_for_long_runs(tmp_path, capsys):
    exam = generate(load("linear-221"), variants=12, seed=1, jobs=1,
                    progress=lambda stage, done, total: print(f"{stage} {done}/{total}", file=sys.stderr))
    documents(exam, Options(formats=("md",)), jobs=1,
              progress=lambda stage, done, total: print(f"{stage} {done}/{total}", file=sys.stderr))
    err = capsys.readouterr().err
    assert "drawing 12/12" in err and "writing 12/12" in err


# -- no wrong answer passes: tolerances against the typical mistakes (QA report items 1, 8, 9) -------------

def outside(q, value):
    """A value, exact or rounded as a student would write it, lies outside the question's tolerance."""
    return all(abs(v - q["answer"]) > q["tolerance"] for v in (value, round(value, places_of(q))))


@pytest.mark.parametrize("name", ["linear-221", "relu-231", "sigmoid-222", "sigmoid-451-batch", "sigmoid-rows-mse",
                                  "softmax-233", "tanh-231"])
def test_no_typical_wrong_value_passes_the_tolerance(name):
    """Over many variants, from the reference alone: an update's tolerance is at most a quarter of its step
    η·∂E/∂p, so neither the parameter before the update nor the step taken uphill (p + η·∂E/∂p) passes;
    no distractor passes the answer's tolerance; neither does 0, an activation's net input (the function
    left out) or the loss with another constant in front (½ or the mean dropped or added)."""
    exam = generate(load(name), variants=12, seed=99, jobs=2)
    updates = 0
    for variant in exam.json():
        sol = solve(variant["spec"])             # names only: where a parameter or unit sits
        ref = Reference(variant["spec"])
        for q in variant["questions"]:
            if not isinstance(q["answer"], float):
                continue
            true = reference_answer(sol, ref, q)
            assert outside(q, 0.0), q
            # the exact value is not halfway between two roundings, where both lie on the tolerance's edge
            assert abs(abs(q["answer"] - true) - 0.5 * 10 ** -places_of(q)) > 1e-12, (q, true)
            if q["kind"] == "update":
                updates += 1
                where = locate(sol, q["quantity"][:-1])
                old = ref.W[where[1]][where[2]][where[3]] if where[0] == "W" else ref.b[where[1]][where[2]]
                step = ref.rate * ref.gradient(where)
                assert 0.5 * 10 ** -places_of(q) <= q["tolerance"] <= abs(step) / 4 + 1e-9, (q, step)
                assert outside(q, old) and outside(q, old + step), (q, old, step)
                # yet a student whose gradient passes its own question (rounded to 4 decimals, or off by almost
                # its tolerance: 1% of it, at least half a unit), who steps the right way and rounds p', passes
                g = round(step / ref.rate, 4)
                off = 0.999 * max(0.01 * abs(g), 0.5e-4)
                for student in (g, g + off, g - off):
                    mine = round(old - ref.rate * student, places_of(q))
                    assert abs(mine - q["answer"]) <= q["tolerance"] + 1e-12, (q, student)
            if q["kind"] == "choice":
                for d in q["distractors"]:
                    assert outside(q, d["value"]), (q, d)
            if q["kind"] == "forward":
                l, j, which = unit(sol, q["quantity"].split("[")[0])
                z = ref.passes()[0][l][0][j]
                if which == 1 and ref.acts[l] != "linear":
                    assert outside(q, z), (q, z)
            if q["kind"] == "loss" and ref.loss in ("half_sse", "sse", "mse", "quadratic"):
                outputs = [p[-1][1] for p in ref.passes()]
                for other in ("half_sse", "sse", "mse", "quadratic"):
                    value = loss_of(other, outputs, ref.y)
                    if abs(value - true) > 1e-12:
                        assert outside(q, value), (q, other, value)
    assert updates == 12                         # every variant asks one update (the default questions)


ONE_WEIGHT = """
[network]
layers = [1, 1]
activation = "linear"
loss = "half_sse"
[data]
x = [1]
y = [0.5]
[exam]
x = [1]
y = [0.5]
W = [0.45]
learning_rate = 0.1
questions = ["update"]
"""


def test_update_tolerance_by_hand():
    """o = w·x, E = ½(y − o)²: ∂E/∂w = (0.45 − 0.5)·1 = −0.05, w' = 0.45 + 0.1·0.05 = 0.455.
    The step is 0.005, so the tolerance is at most 0.00125 (not 1% of 0.455 = 0.00455, which would
    accept the old 0.45); the step taken uphill 0.445 and the doubled gradient's 0.46 fail too."""
    q = generate(loads(ONE_WEIGHT, "one.toml"), variants=1, seed=1, jobs=1).json()[0]["questions"][0]
    assert q["quantity"] == "w1'" and q["answer"] == 0.455 and q["display"] == "0.4550"
    assert 0.00005 <= q["tolerance"] <= 0.00125
    assert all(outside(q, wrong) for wrong in (0.45, 0.445, 0.46))
    # a student whose gradient is 1% off (−0.0505, inside its tolerance) gets 0.45505, rounded 0.4551 or 0.4550
    assert not outside(q, 0.4551) and not outside(q, 0.4550)


def test_update_that_cannot_be_graded_is_refused():
    """w = 0.3, η = 0.1, an absolute tolerance of 0.05 at 2 decimals: ∂E/∂w = −0.2, the step is 0.02. A student
    whose gradient passes (−0.25) moves w' by 0.005 more, as much as a quarter of the step: no tolerance
    accepts that student and keeps the old weight out, however many decimals are asked."""
    text = ONE_WEIGHT.replace("W = [0.45]", "W = [0.3]") + "decimals = 2\ntolerance = 0.05\ntries = 20\n"
    with pytest.raises(ExamError, match="update whose typical mistakes lie clear of its tolerance"):
        generate(loads(text, "one.toml"), variants=1, seed=1, jobs=1)


def test_formula_only_exam_draws_variants():
    """An exam of formula questions has no numerical answers; its variants differ by their numbers."""
    text = """
[network]
layers = [2, 2, 1]
activation = "sigmoid"
bias = "neuron"
loss = "half_sse"
[data]
x = [[0.5, -0.5]]
y = [[0.5]]
[exam]
questions = ["formula:w1"]
"""
    exam = generate(loads(text, "x33.toml"), variants=3, seed=1, jobs=1).json()
    assert len({json.dumps(v["spec"]["data"]) + json.dumps(v["spec"]["init"]) for v in exam}) == 3
    for variant in exam:
        assert [q["quantity"] for q in variant["questions"]] == ["dE/dw1"]
        check_against_reference(variant)


def test_a_variant_never_asks_one_quantity_twice():
    """A gradient asked as a number, as a formula and as a choice is one quantity: never twice per variant.
    (The QA's e1.toml, where variants 4 and 6 of --seed 3 asked dE/dw2_21 as a gradient and as a formula.)"""
    text = """
[network]
layers = [2, 3, 2]
activation = ["tanh", "sigmoid"]
bias = "neuron"
loss = "mse"
[data]
x = [[0.5, -0.5], [1, 0.2]]
y = [[0.1, 0.9], [0.5, 0.5]]
[train]
learning_rate = 0.5
[exam]
decimals = 3
tolerance = 0.001
questions = ["forward:output", "loss", "gradient:W2", "gradient:W1", "update:W1", "formula:W2", "shape",
             "choice:W1", "forward:hidden", "gradient:B1", "update:b2_1", "formula:W1", "gradient"]
x = {min = -1, max = 1, step = 0.25}
y = [0.1, 0.5, 0.9]
W = {min = -0.5, max = 0.5, step = 0.1}
learning_rate = [0.1, 0.5]
activation = [["tanh", "sigmoid"], ["sigmoid", "sigmoid"]]
loss = ["half_sse", "mse", "bce"]
[notation]
style = "indexed"
"""
    for variant in generate(loads(text, "e1.toml"), variants=8, seed=3, jobs=2).json():
        asked = [q["quantity"] for q in variant["questions"]]
        assert len(asked) == len(set(asked)), asked


def test_questions_that_must_ask_one_quantity_twice_are_refused():
    text = ONE_WEIGHT.replace('questions = ["update"]', 'questions = ["gradient:w1", "formula:W1"]')
    with pytest.raises(SpecError, match=r"\[exam\]\.questions: formula:W1: every quantity"):
        generate(loads(text, "one.toml"), variants=1, seed=1, jobs=1)


def test_default_questions_fit_a_network_with_few_weights():
    """A 2-1 network has two weights: the gradient and the formula take them, the choice asks about the bias."""
    text = """
[network]
layers = [2, 1]
activation = "sigmoid"
bias = "neuron"
[data]
x = [[0.5, -0.5]]
y = [[0.5]]
"""
    for variant in generate(loads(text, "two.toml"), variants=3, seed=1, jobs=1).json():
        asked = {q["kind"]: q["quantity"] for q in variant["questions"]}
        assert {asked["gradient"], asked["formula"]} == {"dE/dw1", "dE/dw2"} and asked["choice"] == "dE/db1"
        check_against_reference(variant)


# -- Moodle's Cloze parser, as question/type/multianswer/questiontype.php reads a field ----------
# (qtype_multianswer_extract_question: an answer ends at ~ # } not after \ & &amp;, a feedback at ~ }
# not after \; then html_entity_decode and only \} and \# un-escaped; shortanswer's * is a wildcard)
MOODLE_FRACTION = r"=|%(?:-?[0-9]+(?:[.,][0-9]*)?)%"
MOODLE_ANSWER = r".+?(?<!\\)(?<!&)(?<!&amp;)(?=[~#}]|$)"
MOODLE_FEEDBACK = r".*?(?<!\\)(?=[~}]|$)"
MOODLE_ALT = rf"(?:({MOODLE_FRACTION})?({MOODLE_ANSWER})(?:#({MOODLE_FEEDBACK}))?)"
MOODLE_ALT_PLAIN = rf"(?:(?:{MOODLE_FRACTION})?(?:{MOODLE_ANSWER})(?:#(?:{MOODLE_FEEDBACK}))?)"
MOODLE_FIELD = re.compile(r"\{([0-9]*):(NUMERICAL|MULTICHOICE_VS?|SHORTANSWER):(" + MOODLE_ALT_PLAIN
                          + r"(?:~" + MOODLE_ALT_PLAIN + r")*)\}", re.S)


def moodle_decode(text: str | None) -> str:
    import html

    return html.unescape(text or "").replace("\\}", "}").replace("\\#", "#")


def moodle_fields(questiontext: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(type, [(fraction, answer, feedback)]) of every field, decoded as Moodle stores them."""
    fields = []
    for match in MOODLE_FIELD.finditer(questiontext):
        rest, alternatives = match.group(3), []
        while rest:
            alt = re.match("~?" + MOODLE_ALT, rest, re.S)
            fraction, answer, feedback = alt.groups()
            alternatives.append((fraction or "", moodle_decode(answer), moodle_decode(feedback)))
            rest = rest[alt.end():]
        fields.append((match.group(2), alternatives))
    return fields


def moodle_wildcard(pattern: str, response: str) -> bool:
    """shortanswer's compare_string_with_wildcard: * (not after \\) is any text, \\* a literal *."""
    pieces = re.split(r"(?<!\\)\*+", pattern)
    regex = ".*".join(re.escape(p.replace("\\*", "*")) for p in pieces)
    return re.fullmatch(regex, response.strip(), re.I) is not None


def test_moodle_reads_every_cloze_field_back_as_written(tmp_path):
    """Every part of every variant, parsed as Moodle parses it: the options, the right one, each mistake's
    feedback with its / and quotes, no stray backslash; the shape accepts 3x2 spellings and not 3x12."""
    import html

    out = tmp_path / "exam"
    assert main(["exam", "sigmoid-222", "--variants", "6", "--seed", "3", "--out", str(out), "--format", "moodle"]) == 0
    root = ET.parse(out / "moodle.xml").getroot()
    variants = json.loads((out / "answers.json").read_text(encoding="utf-8"))
    questions = [q for q in root if q.get("type") == "cloze"]
    kinds, mistaken = set(), 0
    for element, variant in zip(questions, variants):
        fields = moodle_fields(element.find("questiontext/text").text)
        assert len(fields) == len(variant["questions"])
        for (kind, alternatives), q in zip(fields, variant["questions"]):
            kinds.add(q["kind"])
            right = [a for f, a, _ in alternatives if f == "="]
            assert (len(right) == 1 or q["kind"] == "shape") and all(f in ("=", "", "%0%") for f, _, _ in alternatives)
            for _, answer, feedback in alternatives:
                assert "\\/" not in answer + feedback and '\\"' not in answer + feedback
            if q["kind"] == "choice":
                assert kind == "MULTICHOICE_V" and html.unescape(right[0]) == q["display"]
                wrong = {html.unescape(a): html.unescape(fb) for f, a, fb in alternatives if not f}
                assert wrong == {d["display"]: f"Not quite: {d['mistake']}." for d in q["distractors"]}
            elif q["kind"] == "formula":
                assert kind == "MULTICHOICE_VS" and html.unescape(right[0]) == q["answer"]
                wrong = {html.unescape(a): html.unescape(fb) for f, a, fb in alternatives if not f}
                assert wrong == {d["formula"]: f"Not quite: {d['mistake']}." for d in q["distractors"]}
            elif q["kind"] == "shape":
                rows, cols = q["answer"].split("x")
                patterns = [a for _, a, _ in alternatives]
                for typed in (f"{rows}x{cols}", f"{rows} x {cols}", f"{rows}*{cols}", f"({rows}, {cols})"):
                    assert any(moodle_wildcard(p, typed) for p in patterns), typed
                for typed in (f"{rows}x1{cols}", f"{rows}*{cols}0", f"{cols}x{rows}" if rows != cols else "0x0"):
                    assert not any(moodle_wildcard(p, typed) for p in patterns), typed
            else:
                assert kind == "NUMERICAL" and alternatives[0][0] == "="   # Moodle takes the first that matches
                value, tol = right[0].split(":")
                assert (float(value), float(tol)) == (q["answer"], q["tolerance"])
                # each typical mistake at 0 % with its diagnosis, its window clear of the right answer's
                wrong = [(a.split(":"), fb) for f, a, fb in alternatives if f == "%0%"]
                assert [(float(v), fb) for (v, _), fb in wrong] == \
                    [(m["value"], f"Not quite: {m['mistake']}.") for m in q.get("mistakes", [])]
                for (v, t), _ in wrong:
                    assert abs(float(v) - q["answer"]) > q["tolerance"] and float(t) == q["tolerance"]
                mistaken += len(wrong)
    assert kinds == {"forward", "loss", "gradient", "update", "formula", "shape", "choice"}
    assert mistaken >= 6 * 5           # every numerical part has at least one typical mistake to catch


def test_choice_options_are_far_apart_and_never_another_questions_answer():
    """A distractor one unit of the last decimal from the answer, or equal to the answer of another
    question on the sheet (61 of 200 variants once), hints or misleads: neither may happen."""
    exam = generate(load("sigmoid-222"), 40, seed=5)
    unit = 10.0 ** -exam.cfg.decimals
    for variant in exam.variants:
        answers = {q.display: q.id for q in variant.questions}
        for q in variant.questions:
            if q.kind != "choice":
                continue
            values = [o.value for o in q.options]
            for o in q.options:
                assert o.mistake is None or answers.get(o.plain, q.id) == q.id, (variant.number, o.plain)
            for i, a in enumerate(values):
                for b in values[:i]:
                    assert abs(a - b) >= 3 * unit * (1 - 1e-9) and abs(a - b) >= 0.1 * max(abs(a), abs(b)), values


def test_softmax_variants_have_two_classes_in_every_batch():
    """All samples of one class (2 of 50 variants once) leaves half the softmax untested."""
    text = example_text("softmax-233").replace("x = [[0.5, -1]]", "x = [[0.1, 0.2], [0.3, -0.1], [-0.2, 0.4]]")
    text = text.replace("y = [[0, 1, 0]]", "y = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]")
    exam = generate(loads(text), 30, seed=2)
    assert exam.template.samples == 3
    for variant in exam.variants:
        classes = {tuple(row) for row in variant.raw["data"]["y"]}
        assert len(classes) >= 2, variant.raw["data"]["y"]
