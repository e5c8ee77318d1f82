"""Reading a spec: exact numbers, the layout of matrices and samples, names, and every refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import sympy as sp
from sympy import Rational

from derive import SpecError, example_names, load, loads, solve
from derive.model.network import build
from derive.model.spec import (  # not derive.parse: importing derive.parse (the claim parser) rebinds that name
    number,
    parse,
)

BASE = {"network": {"layers": [2, 2, 1], "activation": "sigmoid", "bias": "neuron", "loss": "half_sse"},
        "data": {"x": [[1, 2]], "y": [[0.5]]}}


def with_(**tables) -> dict:
    """BASE with some tables' keys replaced (a value of None deletes the key)."""
    raw = {name: dict(table) for name, table in BASE.items()}
    for name, changes in tables.items():
        table = raw.setdefault(name, {})
        for key, value in changes.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    return raw


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, exact", [
    (0.1, Rational(1, 10)),                  # a Python float means the decimal it prints as
    (0.3, Rational(3, 10)),
    (1e-05, Rational(1, 100000)),
    (Decimal("0.1"), Rational(1, 10)),       # what TOML decimals arrive as
    ("0.1", Rational(1, 10)),
    ("1/3", Rational(1, 3)),
    (" -2/6 ", Rational(-1, 3)),
    ("-2.5e-3", Rational(-1, 400)),
    (7, Rational(7)),
    (Fraction(2, 7), Rational(2, 7)),
    (Rational(5, 9), Rational(5, 9)),
    ("1e-50", Rational(1, 10 ** 50)),
    (-1e12, Rational(-10 ** 12)),
    (0.0, Rational(0)),
])
def test_numbers_are_exact(given, exact):
    spec = parse(with_(data={"x": [[given, 1]]}))
    assert spec.x[0][0] == exact and isinstance(spec.x[0][0], sp.Rational)


def test_toml_decimals_are_exact():
    spec = loads('[network]\nlayers = [1, 1]\n[data]\nx = [0.1]\ny = [3.3e-1]\n[init]\nW1 = [[0.7]]\n'
                 '[train]\nlearning_rate = 0.05\n')
    assert spec.x == ((Rational(1, 10),),) and spec.y == ((Rational(33, 100),),)
    assert spec.weights == (((Rational(7, 10),),),) and spec.learning_rate == Rational(1, 20)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "nan", "inf", "Infinity", "abc",
                                 "1/0", "", True, False, None, {"a": 1}, "1" * 101, 1e13, "2e12", 1e-51])
def test_bad_numbers_are_refused(bad):
    with pytest.raises(SpecError) as err:
        parse(with_(data={"x": [[bad, 1]]}), "net.toml")
    message = str(err.value)
    assert message.startswith("net.toml: [data].x[0][0]: expected ") and "\n" not in message


@pytest.mark.parametrize("huge", ["1e999999999", "-1e999999999", "1e-999999999", Decimal("1E+999999999")])
def test_huge_exponents_are_refused_at_once(huge):
    """Fraction("1e999999999") would compute 10**999999999: minutes and gigabytes."""
    with pytest.raises(SpecError, match=r"\[data\]\.x\[0\]\[0\]: expected 0 or a number between"):
        parse(with_(data={"x": [[huge, 1]]}))


def test_toml_huge_exponent_is_refused():
    with pytest.raises(SpecError, match="between 1e-50 and 1e12"):
        loads("[network]\nlayers = [1, 1]\n[data]\nx = [1e999999999]\ny = [1]\n", "big.toml")


# -- layout --------------------------------------------------------------------------------------

def test_column_convention_and_sequential_numbering():
    """DESIGN.md: W1[j][k] goes from unit k to unit j; w1 = W1[0][0], w2 = W1[0][1], w3 = W1[1][0]."""
    sol = solve("linear-221")
    net = sol.network
    assert sol.spec.weights[0] == ((Rational(11, 100), Rational(21, 100)), (Rational(12, 100), Rational(8, 100)))
    names = [net.names[w].plain for layer in net.weights for row in layer for w in row]
    assert names == ["w1", "w2", "w3", "w4", "w5", "w6"]
    first = sol.training.first.parameters
    assert [first[w] for row in net.weights[0] for w in row] == [Rational(v, 100) for v in (11, 21, 12, 8)]
    # z_h1 = w1 x1 + w2 x2: unit 1 of the hidden layer reads both inputs through W1's first row
    x1, x2 = net.inputs
    assert net.definitions[net.nets[0][0]] == net.weights[0][0][0] * x1 + net.weights[0][0][1] * x2


def test_row_convention_reads_w_as_inputs_by_outputs():
    """Seed 2: Z = X·W + B, so W1 has one row per input and one column per hidden unit."""
    raw = with_(network={"convention": "row", "layers": [2, 3, 1]},
                init={"W1": [[1, 2, 3], [4, 5, 6]], "W2": [[7], [8], [9]]})
    spec = parse(raw)
    assert spec.weights[0] == ((1, 4), (2, 5), (3, 6))        # stored [j][k]: unit j reads x_k
    assert spec.weights[1] == ((7, 8, 9),)
    with pytest.raises(SpecError, match=r"\[init\]\.W1: expected a 2×3 matrix"):
        parse(with_(network={"convention": "row", "layers": [2, 3, 1]}, init={"W1": [[1, 2], [3, 4], [5, 6]]}))


def test_transposed_convention_reads_w_as_inputs_by_outputs():
    """Seed 3: W_ih is 4×5 and Z1 = W_ihᵀ X + b_ih, so W1 has one row per input as in the row convention."""
    raw = with_(network={"convention": "transposed", "layers": [2, 3, 1]},
                init={"W1": [[1, 2, 3], [4, 5, 6]], "W2": [[7], [8], [9]]})
    spec = parse(raw)
    assert spec.convention == "transposed" and spec.convention.stored_in_out and not spec.convention.rows
    assert spec.weights[0] == ((1, 4), (2, 5), (3, 6))        # stored [j][k]: unit j reads x_k
    assert spec.weights[1] == ((7, 8, 9),)
    # the names follow the stored indices: w^{(1)}_{12} is W1[0][1], from input 1 to hidden unit 2
    net = solve(with_(network={"convention": "transposed", "layers": [2, 3, 1]}, init=raw["init"],
                      notation={"style": "indexed"})).network
    assert net.names[net.weights[0][1][0]].plain == "w1_12"
    assert len(solve(raw).json()["gradients"]["W1"]) == 2          # the JSON writes W as the spec: 2×3


@pytest.mark.parametrize("convention, W1, expected", [
    ("transposed", [[1, 2], [3, 4], [5, 6]], "expected a 2×3 matrix (2 rows of 3 numbers: one row per unit of layer 0, "
                                             "as convention = \"transposed\" stores W1 input × output); got 3 rows of 2"),
    ("row", [[1, 2], [3, 4], [5, 6]], "as convention = \"row\" stores W1 input × output"),
    ("column", [[1, 2, 3], [4, 5, 6]], "expected a 3×2 matrix (3 rows of 2 numbers: one row per unit of layer 1, "
                                       "as convention = \"column\" stores W1 output × input); got 2 rows of 3"),
])
def test_a_weight_matrix_of_the_other_conventions_shape_is_refused_in_one_line(convention, W1, expected):
    with pytest.raises(SpecError) as err:
        parse(with_(network={"convention": convention, "layers": [2, 3, 1]}, init={"W1": W1}), "net.toml")
    message = str(err.value)
    assert message.startswith("net.toml: [init].W1: ") and expected in message and "\n" not in message, message


def test_a_transposed_spec_of_the_wrong_shape_stops_the_cli_in_one_line(tmp_path, capsys):
    from derive.cli import main

    path = tmp_path / "seed3.toml"
    path.write_text('[network]\nlayers = [4, 5, 1]\nconvention = "transposed"\n[data]\nx = [[1, 2, 3, 4]]\ny = [[1]]\n'
                    '[init]\nW2 = [[0.1, 0.2, 0.3, 0.4, 0.5]]\n', encoding="utf-8")
    assert main(["solve", str(path), "--format", "json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "seed3.toml: [init].W2: expected a 5×1 matrix" in err and "input × output" in err, err


def test_indexed_names_follow_the_convention():
    col = solve(with_(network={"layers": [2, 3, 1]}, notation={"style": "indexed"}))
    row = solve(with_(network={"layers": [2, 3, 1], "convention": "row"}, notation={"style": "indexed"}))
    # the weight from input 1 to hidden unit 2: w^{(1)}_{21} in columns, w^{(1)}_{12} in rows (its place in W)
    assert col.network.names[col.network.weights[0][1][0]].plain == "w1_21"
    assert row.network.names[row.network.weights[0][1][0]].plain == "w1_12"


def test_contract_plain_names():
    one = solve(with_()).network
    assert [one.names[s].plain for s in one.inputs] == ["x1", "x2"]
    assert [one.names[s].plain for s in one.targets] == ["y"]
    assert [one.names[s].plain for s in one.outputs] == ["o"]
    assert one.names[one.loss].plain == "E"
    two = solve(with_(network={"layers": [2, 2, 2]}, data={"y": [[0.5, 0.5]]})).network
    assert [two.names[s].plain for s in two.targets] == ["y1", "y2"]
    assert [two.names[s].plain for s in two.outputs] == ["o1", "o2"]


def test_every_name_is_distinct():
    for raw in (with_(network={"layers": [12, 11, 3, 2]}, data={"x": [[0] * 12], "y": [[0, 0]]},
                      notation={"style": "indexed"}),
                with_(network={"layers": [12, 11, 3, 2]}, data={"x": [[0] * 12], "y": [[0, 0]]})):
        d = solve(raw).derivation
        plains = [n.plain for n in d.names.values()]
        assert len(plains) == len(set(plains))


def test_samples():
    flat = parse(with_(data={"x": [1, 2], "y": 0.5}))
    assert flat.x == ((1, 2),) and flat.y == ((Rational(1, 2),),)
    # one output: a flat y with one number per sample is that many samples
    batch = parse(with_(data={"x": [[1, 2], [3, 4], [5, 6]], "y": [1, 0, 1]}))
    assert batch.y == ((1,), (0,), (1,))
    assert batch.samples == 3


def test_biases():
    assert parse(with_(network={"bias": "none"})).biases == ((), ())
    shared = parse(with_(network={"bias": "shared"}, init={"b1": 0.35, "b2": "3/5"}))
    assert shared.biases == ((Rational(7, 20),), (Rational(3, 5),))
    neuron = parse(with_(init={"b1": [1, 2], "b2": [3]}))
    assert neuron.biases == ((1, 2), (3,))


def test_missing_initial_values_are_drawn_from_the_seed():
    a, b = parse(with_(init={"seed": 5})), parse(with_(init={"seed": 5}))
    c = parse(with_(init={"seed": 6}))
    assert a.weights == b.weights and a.biases == b.biases
    assert a.weights != c.weights
    for value in [v for m in a.weights for r in m for v in r] + [v for bs in a.biases for v in bs]:
        assert value != 0 and abs(value) <= Rational(1, 2) and (value * 100).is_integer
    given = parse(with_(init={"seed": 5, "W1": [[1, 2], [3, 4]]}))
    assert given.weights[0] == ((1, 2), (3, 4)) and given.weights[1] == a.weights[1]


def test_defaults():
    spec = parse({"network": {"layers": [1, 1]}, "data": {"x": [1], "y": [1]}})
    assert (spec.activations, spec.bias.uniform, spec.loss, spec.convention, spec.style) == (
        ("sigmoid",), "none", "half_sse", "column", "sequential")
    assert spec.learning_rate == Rational(1, 10) and spec.steps == 1 and spec.freeze == ()
    assert spec.slope == Rational(1, 100)


def test_examples_load():
    names = example_names()
    assert {"linear-221", "sigmoid-rows-mse", "sigmoid-451-batch", "sigmoid-222"} <= set(names)
    for name in names:
        spec = load(name)
        assert spec.source == name and spec.title
        build(spec)
    seed3 = load("sigmoid-451-batch")
    assert seed3.layers == (4, 5, 1) and seed3.bias.uniform == "shared" and seed3.samples == 5
    seed2 = load("sigmoid-rows-mse")
    assert seed2.convention == "row" and seed2.loss == "mse" and seed2.bias.uniform == "neuron"


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "net.toml"
    path.write_text('[network]\nlayers = [1, 1]\n[data]\nx = [1]\ny = [2]\n', encoding="utf-8")
    assert load(path).source == str(path) and load(str(path)).layers == (1, 1)


# -- refusals -----------------------------------------------------------------------------------
# (raw spec, the field the message must name, a phrase of what was expected)

BAD = [
    ({"data": BASE["data"]}, "[network]", "missing"),
    (with_(network={"layers": None}), "[network].layers", "expected a list"),
    (with_(network={"layers": [2, 0, 1]}), "[network].layers", "positive unit counts"),
    (with_(network={"layers": [2]}), "[network].layers", "at least two"),
    (with_(network={"layers": [2, True]}), "[network].layers", "positive unit counts"),
    (with_(network={"layers": "2-2-1"}), "[network].layers", "expected a list"),
    (with_(network={"layers": [1] * 52}), "[network].layers", "at most 50 layers"),
    (with_(network={"layers": [100, 100]}), "[network].layers", "at most 5000 parameters"),
    (with_(network={"activation": "sigmod"}), "[network].activation", "expected one of"),
    (with_(network={"activation": ["sigmoid"]}), "[network].activation", "list of 2 names"),
    (with_(network={"activation": ["softmax", "sigmoid"]}), "[network].activation", "expected softmax on the output layer only"),
    (with_(network={"activation": 3}), "[network].activation", "expected one name"),
    (with_(network={"loss": "l2"}), "[network].loss", "expected one of"),
    (with_(network={"layers": [2, 2, 2], "activation": ["sigmoid", "softmax"], "loss": "bce"}, data={"y": [[1, 0]]}),
     "[network].loss", "one of cross_entropy, mse, half_sse, sse, quadratic with a softmax output; got 'bce'"),
    (with_(network={"activation": "linear", "loss": "bce"}), "[network].loss", "sigmoid output"),
    (with_(network={"activation": "tanh", "loss": "cross_entropy"}), "[network].loss", "softmax output"),
    (with_(network={"bias": "yes"}), "[network].bias", "none, neuron, shared"),
    (with_(network={"bias": ["neuron"]}), "[network].bias", "a list of 2 of them (one per layer after the input); got [\"neuron\"]"),
    (with_(network={"convention": "rows"}), "[network].convention", "column, row, transposed; got \"rows\""),
    (with_(network={"slope": "steep"}), "[network].slope", "finite number"),
    (with_(network={"layer": [2, 1]}), "[network].layer", "unknown key"),
    (with_(data={"x": None}), "[data].x", "missing"),
    (with_(data={"y": None}), "[data].y", "missing"),
    (with_(data={"x": []}), "[data].x", "at least one sample"),
    (with_(data={"x": [[1, 2, 3]]}), "[data].x", "1×2 matrix"),
    (with_(data={"x": [[1, 2], [3]]}), "[data].x", "2×2 matrix"),
    (with_(data={"x": [[1, 2], [3, 4]], "y": [[1]]}), "[data].y", "expected 2 samples"),
    (with_(data={"x": [[1, 2], [3, 4]], "y": [[1], [2], [3]]}), "[data].y", "expected 2 samples"),
    (with_(data={"y": [[1, 2]]}), "[data].y", "1×1 matrix"),
    (with_(data={"x": [[1, "abc"]]}), "[data].x[0][1]", "finite number"),
    (with_(data={"x": [[1, float("nan")]]}), "[data].x[0][1]", "finite number"),
    (with_(data={"y": [[float("inf")]]}), "[data].y[0][0]", "finite number"),
    (with_(data={"x": [[1, True]]}), "[data].x[0][1]", "expected a number"),
    (with_(data={"z": 1}), "[data].z", "unknown key"),
    (with_(data={"x": [[0, 0]] * 1001, "y": [[0]] * 1001}), "[data].x", "at most"),
    (with_(network={"layers": [32, 32, 32, 10]}, data={"x": [[0] * 32] * 30, "y": [[0] * 10] * 30}),
     "[data].x", "at most 20 samples"),
    (with_(network={"activation": "sigmoid", "loss": "bce"}, data={"y": [[2]]}), "[data].y", "between 0 and 1"),
    (with_(init={"W1": [[1, 2]]}), "[init].W1", "2×2 matrix"),
    (with_(init={"W1": [[1, 2], [3, 4], [5, 6]]}), "[init].W1", "2×2 matrix"),
    (with_(init={"W2": [1, 2]}), "[init].W2", "1×2 matrix"),
    (with_(init={"W1": [[1, 2], [3, "x"]]}), "[init].W1[1][1]", "finite number"),
    (with_(init={"b1": [1]}), "[init].b1", "list of 2 numbers"),
    (with_(init={"b1": 0.5}), "[init].b1", "list of 2 numbers"),
    (with_(network={"bias": "shared"}, init={"b1": [1, 2]}), "[init].b1", "shared ([network].bias is \"shared\" "
     "there): expected one number for the whole layer"),
    (with_(network={"bias": "none"}, init={"b1": [1, 2]}), "[init].b1", "layer 1 has no biases ([network].bias is "
     "\"none\" there); expected no b1"),
    (with_(init={"W3": [[1]]}), "[init].W3", "unknown parameter"),
    (with_(init={"seed": "one"}), "[init].seed", "whole number"),
    (with_(train={"learning_rate": 0}), "[train].learning_rate", "positive"),
    (with_(train={"learning_rate": "fast"}), "[train].learning_rate", "finite number"),
    (with_(train={"steps": 0}), "[train].steps", "whole number from 1"),
    (with_(train={"steps": 2.5}), "[train].steps", "whole number"),
    (with_(train={"steps": 10 ** 7}), "[train].steps", "whole number from 1 to 1000000"),
    (with_(network={"layers": [32, 32, 32, 10]}, data={"x": [[0] * 32], "y": [[0] * 10]}, train={"steps": 100_000}),
     "[train].steps", "at most 20475 steps"),
    (with_(train={"freeze": ["w99"]}), "[train].freeze", "no parameter is named \"w99\""),
    (with_(train={"freeze": "w1"}), "[train].freeze", "list of parameter names"),
    (with_(train={"freeze": ["W3"]}), "[train].freeze", "no parameter is named"),
    (with_(train={"freez": []}), "[train].freez", "unknown key"),
    (with_(notation={"style": "fancy"}), "[notation].style", "sequential, indexed"),
    (with_(notation={"styles": "indexed"}), "[notation].styles", "unknown key"),
    ({**BASE, "netwrk": {}}, "netwrk", "unknown table or key"),
    ({**BASE, "network": [1, 2]}, "[network]", "expected a table"),
    ({**BASE, "title": 5}, "title", "string"),
]


@pytest.mark.parametrize("raw, field, expected", BAD, ids=[f"{i}-{c[1]}" for i, c in enumerate(BAD)])
def test_refusals_name_the_source_field_and_expectation(raw, field, expected):
    with pytest.raises(SpecError) as err:
        parse(raw, "net.toml")
    message = str(err.value)
    assert message.startswith(f"net.toml: {field}: "), message
    assert expected in message, message
    assert "\n" not in message and len(message) < 400
    assert err.value.field == field


def test_malformed_toml():
    with pytest.raises(SpecError, match=r"^net\.toml: not valid TOML: .*line 2"):
        loads('[network]\nlayers = [2, 2]]\n', "net.toml")
    with pytest.raises(SpecError, match=r"^net\.toml: not valid TOML: Unclosed array"):
        loads('[network]\nlayers = [2, 2\n', "net.toml")


def test_unknown_source():
    with pytest.raises(SpecError, match="no such file or built-in example"):
        load("no-such-example")
    with pytest.raises(SpecError) as err:
        load("bad\nname")
    assert "\n" not in str(err.value)


def test_unreadable_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# latin-1\ntitle = '\xe9'\n")
    with pytest.raises(SpecError, match=r"latin1.toml: is not UTF-8 text: byte 0xe9 at line 2, column 10 .*"
                                        r"expected the file saved as UTF-8"):
        load(path)


@pytest.mark.parametrize("text", ["١", "1_000", "0x10", "1/0", "½", "1e", "--1"])
def test_numbers_written_as_text_are_plain_ascii_decimals_or_fractions(text):
    """Python's Fraction and Decimal also read "١" (an Arabic-Indic one) and "1_000"; a spec does not."""
    with pytest.raises(SpecError, match=r"expected a finite number"):
        number(text, "net.toml", "[data].x[0][0]")


def test_a_flat_x_of_a_one_input_network_is_one_value_per_sample():
    """x = [0.5, -0.2] with one input can only be two samples, as y = [1, 0] is for one output."""
    spec = parse({"network": {"layers": [1, 2, 1]}, "data": {"x": [0.5, -0.2], "y": [1, 0]}, "init": {"seed": 1}})
    assert spec.x == ((Rational(1, 2),), (Rational(-1, 5),)) and spec.y == ((1,), (0,))


# -- [network] reduction -------------------------------------------------------------------------

def _reduced(loss: str, reduction: str | None, output: str = "sigmoid") -> dict:
    net = {"layers": [2, 2, 2], "activation": ["tanh", output], "loss": loss, "bias": "neuron"}
    if reduction is not None:
        net["reduction"] = reduction
    return {"network": net, "data": {"x": [[0.5, 0.1], [0.2, 0.7], [0.9, -0.3]],
                                     "y": [[1, 0], [0, 1], [1, 0]]},
            "init": {"W1": [[0.1, 0.2], [0.3, 0.4]], "b1": [0.1, 0.2], "W2": [[0.5, 0.6], [-0.2, 0.3]],
                     "b2": [0.3, -0.1]}}


def test_a_summed_loss_drops_exactly_the_mean():
    """reduction = "sum": mse becomes sse, bce and cross-entropy N·J (N) times their mean, exactly."""
    from derive import solve

    summed, sse = solve(_reduced("mse", "sum")).training.first, solve(_reduced("sse", None)).training.first
    assert summed.loss == sse.loss and summed.gradient == sse.gradient
    for loss, output, factor in (("bce", "sigmoid", 3 * 2), ("cross_entropy", "softmax", 3)):
        mean = solve(_reduced(loss, "mean", output)).training.first
        total = solve(_reduced(loss, "sum", output)).training.first
        assert abs(total.loss - factor * mean.loss) < 1e-50
        assert all(abs(total.gradient[p] - factor * mean.gradient[p]) < 1e-50 for p in mean.gradient)
    assert solve(_reduced("mse", None)).spec.reduction == "mean"


def test_a_summed_loss_reaches_the_checker_and_the_exam(tmp_path):
    from derive import solve
    from derive.check import check_claim
    from derive.cli import main

    s = solve(_reduced("mse", "sum"))
    assert check_claim(s, "de/do1[1] = 2*(o1[1] - y1[1])").holds          # no 1/N to write
    assert main(["exam", str(_write(tmp_path, _reduced("mse", "sum"))), "--variants", "2", "--out",
                 str(tmp_path / "exam"), "--format", "md"]) == 0


def _write(folder, raw) -> str:
    import json

    path = folder / "summed.toml"
    lines = []
    for table, values in raw.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_an_unknown_reduction_is_one_line():
    with pytest.raises(SpecError, match=r"\[network\].reduction: expected one of mean, sum"):
        parse(_reduced("mse", "median"))


MAZUR_NET = """
[network]
layers = [2, 2, 2]
[data]
x = [[0.05, 0.10]]
y = [[0.01, 0.99]]
[notation]
style = "sequential"
"""


def test_aliases_name_the_tutorials_own_symbols():
    spec = loads(MAZUR_NET + 'aliases = { i1 = "x1", target_o1 = "y1", O = "A2" }\n')
    assert spec.aliases == (("O", "A2"), ("i1", "x1"), ("target_o1", "y1"))


@pytest.mark.parametrize("aliases, words", [
    ('{ x2 = "x1" }', "aliases.x2: x2 is already a name of this network"),
    ('{ i1 = "q1" }', 'aliases.i1: expected the name of one of the network\'s values or matrices'),
    ('{ i1 = 1 }', "aliases.i1: expected the name"),
    ('{ "1i" = "x1" }', "aliases.1i: expected a name of letters and digits"),
    ('{ "a\\nb" = "x1" }', "aliases.a\\nb: expected a name of letters and digits"),     # one line, escaped
    ('"x1"', "[notation].aliases: expected a table"),
])
def test_bad_aliases_are_refused_naming_the_field(aliases, words):
    with pytest.raises(SpecError) as info:
        loads(MAZUR_NET + f"aliases = {aliases}\n")
    assert words in str(info.value) and "\n" not in str(info.value)


# -- [notation].symbols: the matrices in a tutorial's own names ------------------------------------------

def test_symbols_rename_the_matrices_and_read_as_aliases():
    """Patel's swap (his Y is derive's A2, his T derive's Y) is one consistent renaming; each symbol is an alias
    for derive check."""
    spec = loads(MAZUR_NET + 'symbols = { A1 = "H1", A2 = "Y", Y = "T", W1 = "W_ih" }\n')
    assert spec.symbols == (("A1", "H1"), ("A2", "Y"), ("W1", "W_ih"), ("Y", "T"))
    assert spec.aliases == (("H1", "A1"), ("T", "Y"), ("W_ih", "W1"), ("Y", "A2"))


@pytest.mark.parametrize("symbols, words", [
    # not a name a user can type, or markup: refused before anything is written
    (r'{ A2 = "\\input{x}" }', "symbols.A2: expected a name: a letter, then letters or digits"),
    ('{ A2 = "a}b" }', "symbols.A2: expected a name"),
    ('{ A2 = "<script>" }', "symbols.A2: expected a name"),
    ('{ A2 = "O O" }', "symbols.A2: expected a name"),
    ('{ A2 = "W__ih" }', "symbols.A2: expected a name"),
    ('{ A2 = "W_i_h" }', "symbols.A2: expected a name"),
    ('{ A2 = "1O" }', "symbols.A2: expected a name"),
    ('{ A2 = "" }', "symbols.A2: expected a name"),
    ('{ A2 = 2 }', "symbols.A2: expected a name"),
    ('{ A2 = "Averyveryverylongname" }', "symbols.A2: expected a name"),
    # names derive check already reads otherwise
    ('{ A2 = "eta" }', "symbols.A2: eta already means something else to derive check"),
    ('{ A2 = "sigmoid" }', "symbols.A2: sigmoid already means something else"),
    ('{ A2 = "dW1" }', "symbols.A2: dW1 already means something else"),
    ('{ A2 = "N" }', "symbols.A2: N already means something else"),
    # clashes: with a scalar of the network, with another symbol, with a matrix left as it is
    ('{ A1 = "h1" }', "symbols.A1: h1 is already a name of this network"),
    ('{ A1 = "H", A2 = "H" }', "symbols.A2: H already names A1"),
    ('{ A2 = "Y" }', "symbols.A2: Y already names Y; rename Y too"),
    ('{ A1 = "Z1" }', "symbols.A1: Z1 already names Z1"),
    # the loss is no key: every section writes E, and derive check reads dL/dW1 anyway
    ('{ E = "L" }', "[notation].symbols: unknown key \"E\"; expected derive's matrix names: X, Y, W1"),
    # a key that is no matrix of this network (no biases here: b1 is none)
    ('{ A3 = "O" }', "[notation].symbols: unknown key \"A3\"; expected derive's matrix names: X, Y, W1"),
    ('{ b1 = "B1" }', "unknown key \"b1\""),
    ('{ "a\\nb" = "O" }', "unknown key"),
    ('"O"', "[notation].symbols: expected a table"),
])
def test_bad_symbols_are_refused_naming_the_field(symbols, words):
    with pytest.raises(SpecError) as info:
        loads(MAZUR_NET + f"symbols = {symbols}\n")
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_an_alias_may_not_take_a_symbols_name():
    with pytest.raises(SpecError, match=r"\[notation\].aliases.O: O is already a name of \[notation\].symbols"):
        loads(MAZUR_NET + 'symbols = { A2 = "O" }\naliases = { O = "A2" }\n')


def test_a_symbol_refused_on_the_command_line_is_one_line_and_exit_1(tmp_path):
    path = tmp_path / "hostile.toml"
    path.write_text(MAZUR_NET + 'symbols = { A2 = "a}b" }\n')
    done = subprocess.run([sys.executable, "-m", "derive", "solve", str(path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "hostile.toml" in done.stderr and "[notation].symbols.A2" in done.stderr
