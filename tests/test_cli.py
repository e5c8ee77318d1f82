"""The command line: the JSON contract, one-line errors with exit status 1, usage errors, determinism,
and an installed (non-editable) copy that carries its examples and templates."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import venv
import zipfile
from fractions import Fraction
from pathlib import Path

import pytest

from derive import example_names, load, solve
from derive.check import check_claim
from derive.cli import main
from derive.numeric.rounding import Rounding

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


def solve_json(name: str, capsys) -> dict:
    assert main(["solve", name, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- the JSON contract ----------------------------------------------------------------------------

def shapes(spec) -> dict:
    """The contract's shape of every parameter: W as [j][k] (in × out in the row and transposed conventions)."""
    out = {}
    for l in range(1, len(spec.layers)):
        rows, cols = spec.layers[l], spec.layers[l - 1]
        out[f"W{l}"] = (cols, rows) if spec.convention in ("row", "transposed") else (rows, cols)
        if spec.bias.of(l - 1) == "neuron":
            out[f"b{l}"] = rows
        elif spec.bias.of(l - 1) == "shared":
            out[f"b{l}"] = None                      # a number
    return out


def check_shape(value, shape):
    if shape is None:
        assert isinstance(value, float)
    elif isinstance(shape, int):
        assert isinstance(value, list) and len(value) == shape and all(isinstance(v, float) for v in value)
    else:
        assert isinstance(value, list) and len(value) == shape[0]
        assert all(isinstance(r, list) and len(r) == shape[1] and all(isinstance(v, float) for v in r)
                   for r in value)


def as_float(value) -> float:
    return float(Fraction(str(value)))


@pytest.mark.parametrize("name", example_names())
def test_json_contract(name, capsys):
    out = solve_json(name, capsys)
    spec = load(name)
    raw = tomllib.loads((ROOT / "derive" / "examples" / f"{name}.toml").read_text(encoding="utf-8"))
    assert {"outputs", "loss", "gradients", "updated", "history"} <= out.keys()
    N, J = spec.samples, spec.layers[-1]
    assert len(out["outputs"]) == N and all(len(row) == J for row in out["outputs"])
    assert isinstance(out["loss"], float)
    expected = shapes(spec)
    for key in ("gradients", "updated", "parameters"):
        assert out[key].keys() == expected.keys(), key
        for param, shape in expected.items():
            check_shape(out[key][param], shape)
    # "indexed like the spec": the initial parameters come back exactly where the TOML put them
    for param, given in raw["init"].items():
        if param != "seed":
            assert out["parameters"][param] == json.loads(json.dumps(given, default=as_float)), param
    # the history: the loss before step 1, then after each step
    assert len(out["history"]) == spec.steps + 1
    assert out["history"][0] == out["loss"] and out["history"][1] == out["new_loss"]
    # a step moves each parameter by −η·gradient (frozen ones stay), in the contract's layout
    rate = float(spec.learning_rate)
    flat = lambda v: v if isinstance(v, list) and v and isinstance(v[0], list) else [v if isinstance(v, list) else [v]]  # noqa: E731
    for param in expected:
        for p0, g, p1 in zip(sum(flat(out["parameters"][param]), []), sum(flat(out["gradients"][param]), []),
                             sum(flat(out["updated"][param]), [])):
            assert p1 == pytest.approx(p0, abs=0) or p1 == pytest.approx(p0 - rate * g, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", example_names())
def test_json_formulas_are_claims_that_derive_check_accepts(name, capsys):
    # the JSON spells formulas as the documents and `derive check` do (relu'(z_h1), not Heaviside(z_h1, 0)),
    # so every one can be pasted back as a claim, and it holds
    out = solve_json(name, capsys)
    s = solve(name)
    for key in ("formulas", "factors"):
        for quantity, formula in out[key].items():
            assert "Heaviside" not in formula and "Piecewise" not in formula, (quantity, formula)
    for quantity, formula in out["formulas"].items():
        assert check_claim(s, f"{quantity} = {formula}").holds, (quantity, formula)


def test_json_of_seed_1(capsys):
    out = solve_json("linear-221", capsys)
    assert out["outputs"] == [[0.191]]
    assert out["loss"] == 0.3272405                 # ½ · 0.809²
    assert out["updated"] == {"W1": [[0.121326, 0.226989], [0.132135, 0.0982025]], "W2": [[0.1743825, 0.169416]]}
    assert out["new_outputs"] == [[0.2557457808075]]


def test_shared_bias_is_a_number_and_row_layout_is_in_by_out(capsys):
    mazur = solve_json("sigmoid-222", capsys)
    assert mazur["parameters"]["b1"] == 0.35 and mazur["updated"]["b2"] == 0.6      # frozen
    rows = solve_json("sigmoid-rows-mse", capsys)
    assert [len(rows["gradients"]["W1"]), len(rows["gradients"]["W1"][0])] == [2, 3]
    assert [len(rows["gradients"]["W2"]), len(rows["gradients"]["W2"][0])] == [3, 1]


def test_out_writes_the_same_json(tmp_path, capsys):
    stdout = solve_json("tanh-231", capsys)
    assert main(["solve", "tanh-231", "--format", "json", "--out", str(tmp_path)]) == 0
    written = tmp_path / "tanh-231.json"
    assert json.loads(written.read_text(encoding="utf-8")) == stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tanh-231.json"]      # no temporary left over


def test_spec_file_from_the_command_line(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[network]\nlayers = [1, 1]\nactivation = "linear"\n[data]\nx = [2]\ny = [1]\n'
                    '[init]\nW1 = [[0.25]]\n', encoding="utf-8")
    done = run("solve", str(path), "--format", "json", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    out = json.loads((tmp_path / "out" / "mine.json").read_text(encoding="utf-8"))
    # E = ½(0.5 − 1)² = 1/8; ∂E/∂w = (o − y)·x = −1; w' = 0.25 + 0.1 = 0.35
    assert out["loss"] == 0.125 and out["gradients"]["W1"] == [[-1.0]] and out["updated"]["W1"] == [[0.35]]


def test_examples_command(capsys):
    assert main(["examples"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == example_names()
    assert all(line.split("\t")[1] for line in lines)


# -- determinism ------------------------------------------------------------------------------

def test_same_spec_gives_byte_identical_json(tmp_path):
    outs = []
    for seed in ("0", "12345"):
        done = run("solve", "softmax-233", "--format", "json", env={"PYTHONHASHSEED": seed})
        assert done.returncode == 0
        outs.append(done.stdout)
    assert outs[0] == outs[1]
    for folder in ("a", "b"):
        assert main(["solve", "sigmoid-451-batch", "--format", "json", "--out", str(tmp_path / folder)]) == 0
    assert (tmp_path / "a" / "sigmoid-451-batch.json").read_bytes() == \
        (tmp_path / "b" / "sigmoid-451-batch.json").read_bytes()


# -- bad input --------------------------------------------------------------------------------
# (file text, the field the message names); each must give exit 1 and one line on stderr

GOOD = '[network]\nlayers = [2, 2, 1]\nactivation = "sigmoid"\nloss = "half_sse"\nbias = "neuron"\n' \
       '[data]\nx = [[1, 2]]\ny = [[0.5]]\n'

BAD_FILES = {
    "malformed": ('[network]\nlayers = [2, 2\n', "not valid TOML"),
    "unknown activation": (GOOD.replace('"sigmoid"', '"sigmod"'), "[network].activation"),
    "unknown loss": (GOOD.replace('"half_sse"', '"hinge"'), "[network].loss"),
    "softmax hidden": (GOOD.replace('"sigmoid"', '["softmax", "sigmoid"]'), "[network].activation"),
    "wrong shape": (GOOD + "[init]\nW1 = [[1, 2, 3], [4, 5, 6]]\n", "[init].W1"),
    "wrong bias shape": (GOOD + "[init]\nb2 = [1, 2]\n", "[init].b2"),
    "missing target": (GOOD.replace("y = [[0.5]]\n", ""), "[data].y"),
    "non-numeric": (GOOD.replace("[[1, 2]]", '[[1, "abc"]]'), "[data].x[0][1]"),
    "nan": (GOOD.replace("[[1, 2]]", "[[1, nan]]"), "[data].x[0][1]"),
    "inf": (GOOD.replace("[[1, 2]]", "[[1, inf]]"), "[data].x[0][1]"),
    "boolean": (GOOD.replace("[[0.5]]", "[[true]]"), "[data].y[0][0]"),
    "huge exponent": (GOOD.replace("[[1, 2]]", "[[1, 1e999999999]]"), "[data].x[0][1]"),
    "empty layer": (GOOD.replace("[2, 2, 1]", "[2, 0, 1]"), "[network].layers"),
    "unknown freeze": (GOOD + '[train]\nfreeze = ["w7"]\n', "[train].freeze"),
    "too large": (GOOD.replace("[2, 2, 1]", "[80, 80, 1]").replace("[[1, 2]]", "[[1]]"), "[network].layers"),
    "unknown key": (GOOD + "[train]\nsteps = 2\nepochs = 3\n", "[train].epochs"),
    "unknown table": (GOOD + "[optimizer]\nname = 'adam'\n", "optimizer"),
    "sample count": (GOOD.replace("y = [[0.5]]", "y = [[0.5], [0.2]]"), "[data].y"),
    "diverges": (GOOD.replace('"sigmoid"', '"linear"') + "[init]\nseed = 1\n[train]\nlearning_rate = 1000\n"
                 "steps = 50\n", "[train].learning_rate"),
}


def check_one_line(stderr: str, path: Path, field: str):
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"derive: error: {path}: "), stderr
    assert field in lines[0] and "expected" in lines[0] or "not valid TOML" in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("fmt", ["json", "md"])
@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_input_in_process(case, fmt, tmp_path, capsys):
    text, field = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["solve", str(path), "--format", fmt, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    check_one_line(captured.err, path, field)
    assert captured.out == ""
    assert not out.exists() or list(out.iterdir()) == []        # nothing half-written


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_input_as_a_process(case, tmp_path):
    text, field = BAD_FILES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    done = run("solve", str(path), "--format", "json", "--out", str(out))
    assert done.returncode == 1
    check_one_line(done.stderr, path, field)
    assert done.stdout == ""
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_spec_and_unwritable_out(tmp_path, capsys):
    assert main(["solve", "no-such-net", "--format", "json"]) == 1
    assert capsys.readouterr().err == "derive: error: no-such-net: no such file or built-in example " \
                                      "(derive examples lists them)\n"
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert main(["solve", "linear-221", "--format", "json", "--out", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("derive: error: ") and "Traceback" not in err
    # a folder where a figure goes would stop the moves halfway: nothing is written, and it is named
    (tmp_path / "out" / "sigmoid-222-network.svg").mkdir(parents=True)
    assert main(["solve", "sigmoid-222", "--format", "md", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "sigmoid-222-network.svg is a folder" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sigmoid-222-network.svg"]
    # a folder or a device as SPEC is named as such, not as missing
    assert main(["solve", str(tmp_path), "--format", "json"]) == 1
    assert capsys.readouterr().err.endswith("is a folder; expected a TOML file or a built-in example's name\n")
    assert main(["solve", "/dev/null", "--format", "json"]) == 1
    assert "is not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    [], ["solve"], ["frobnicate"], ["solve", "linear-221", "--format", "docx"],
    ["solve", "linear-221", "--precision", "abc"], ["solve", "linear-221", "--bogus"], ["examples", "extra"],
])
def test_usage_errors_exit_2(args):
    done = run(*args)
    assert done.returncode == 2
    assert "usage:" in done.stderr and "Traceback" not in done.stderr


# -- packaging -------------------------------------------------------------------------------

def test_installed_wheel_carries_examples_and_templates(tmp_path):
    """Build the wheel (not an editable install), install it into a fresh environment, and run the
    installed ``derive`` from a folder far from the source checkout."""
    # with hatchling at hand the build needs no network; otherwise pip fetches it in an isolated build
    offline = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *offline,
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel, = (tmp_path / "dist").glob("derive-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"derive/examples/{n}.toml" for n in example_names()} <= set(names)
    assert {f"derive/templates/{p.name}" for p in (ROOT / "templates").glob("*.j2")} <= set(names)
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "derive = derive.cli:main" in entry

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # --ignore-installed: where derive is already in the base interpreter's site-packages (CI installs
    # it there), pip would call the requirement satisfied through system_site_packages and skip it
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--ignore-installed", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(python), "-c", "import derive; print(derive.__file__)"], cwd=elsewhere,
                           capture_output=True, text=True, env=clean, timeout=300)
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout     # the copy, not the checkout
    derive = env_dir / "bin" / "derive"
    listed = subprocess.run([str(derive), "examples"], cwd=elsewhere, capture_output=True, text=True, env=clean,
                            timeout=300)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == example_names()
    for fmt in ("json", "md"):
        done = subprocess.run([str(derive), "solve", "linear-221", "--format", fmt], cwd=elsewhere,
                              capture_output=True, text=True, env=clean, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "0.191" in done.stdout


def test_rounding_carried_reaches_json_and_documents(capsys):
    """--rounding carried: the JSON holds the hand calculation's numbers (test_engine checks them
    against a Decimal calculation), and the document says how it rounds and how far that moves."""
    assert main(["solve", "sigmoid-222", "--format", "json", "--rounding", "carried", "--precision", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    carried = solve("sigmoid-222", carry=4).training.first
    w1 = carried.gradient[solve("sigmoid-222").symbol("w1")]
    assert out["gradients"]["W1"][0][0] == float(w1) and len(str(w1.p)) <= 4
    assert main(["solve", "sigmoid-222", "--rounding", "carried"]) == 0
    text = capsys.readouterr().out
    assert "rounded to 6 significant digits" in text and "**Carried rounding:**" in text
    assert main(["solve", "sigmoid-222", "--rounding", "carried", "--precision", "0", "--format", "json"]) == 1
    assert "--precision 0: expected a whole number from 1 to 30" in capsys.readouterr().err


def test_decimals_carried_reproduce_the_first_seeds_table(capsys):
    """hmkcode's tutorial rounds to two decimals as it goes: its updated weights are 0.12 0.23 0.13 0.10
    and 0.17 0.17 (seeds/README.md); --decimals 2 --rounding carried gives the same table."""
    assert main(["solve", "linear-221", "--decimals", "2", "--rounding", "carried", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["updated"] == {"W1": [[0.12, 0.23], [0.13, 0.10]], "W2": [[0.17, 0.17]]}
    # every carried value is a decimal of at most two places, so the next line computes with it
    first = solve("linear-221", carry=Rounding(2, decimals=True)).training.first
    assert all((v * 100).is_Integer for env in first.samples for v in env.values())


@pytest.mark.parametrize("name", example_names())
@pytest.mark.parametrize("places", [2, 4])
def test_every_example_is_written_with_decimals_carried(capsys, name, places):
    """A gradient table's row δ·a of numbers carried to 2 places is −0.0236 before its own rounding to −0.02: the
    row's check measured that difference against 0.02 and refused sigmoid-222 and softmax-233 ("internal error",
    no document). Carried to n places, a check's unit is the place's."""
    assert main(["solve", name, "--decimals", str(places), "--rounding", "carried"]) == 0
    out = capsys.readouterr()
    assert f"{places} decimal places" in out.out and not out.err


def test_decimals_show_every_number_to_its_places(capsys):
    assert main(["solve", "linear-221", "--decimals", "2"]) == 0
    text = capsys.readouterr().out
    assert "rounded for display: to 2 decimal places" in text
    assert r"&= 0.11 \cdot 2 + 0.21 \cdot 3 \\" in text            # exact values as they are
    assert r"&\approx 0.12" in text and r"\approx 0.1195" not in text
    with pytest.raises(SystemExit) as both:         # one or the other, as argparse says
        main(["solve", "linear-221", "--decimals", "2", "--precision", "3"])
    assert both.value.code == 2 and "not allowed with argument --decimals" in capsys.readouterr().err
    assert main(["solve", "linear-221", "--decimals", "21", "--format", "json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--decimals 21: expected a whole number from 0 to 20" in err
