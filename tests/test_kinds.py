"""Formulas kept per kind of network (``per_kind``): the same for every network of a kind whatever its numbers, and
never another kind's. Each document is compared with the one made with nothing kept."""

from __future__ import annotations

import copy
import dataclasses
import tomllib

import pytest

from derive import solve
from derive.model.examples import example_text
from derive.model.network import NUMBERS, forget_kinds
from derive.model.spec import Spec, example_names
from derive.text.document import View, build
from derive.text.render import render_solution
from tests.test_general import spec


def _scaled(value, by: float):
    if isinstance(value, list):
        return [_scaled(v, by) for v in value]
    return round(value * by + 0.05, 4) if isinstance(value, (int, float)) else value


def renumbered(raw: dict) -> dict:
    """The same network with other numbers: other inputs, initial values and targets (rows that sum to 1 are
    reversed, so that they still do; the others moved)."""
    other = copy.deepcopy(raw)
    data = other["data"]
    data["x"] = _scaled(data["x"], 1.5)
    data["y"] = [row[::-1] if sum(row) == 1 else [min(1.0, abs(v) * 0.5 + 0.1) for v in row] for row in data["y"]]
    init = other.get("init", {})
    for key, value in init.items():
        init[key] = value + 1 if key == "seed" else _scaled(value, -0.7)
    return other


def document(raw: dict, detail: str) -> str:
    s = solve(copy.deepcopy(raw))
    return render_solution(s, "md", doc=build(s, view=View(detail=detail)))


CASES = {name: tomllib.loads(example_text(name)) for name in example_names()}
CASES["rows-shared-tanh"] = spec([2, 3, 2], ["tanh", "sigmoid"], bias="shared", convention="row", samples=2)
CASES["transposed-relu-linear"] = spec([2, 3, 1], ["relu", "linear"], convention="transposed", samples=3)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("detail", ["short", "full"])
def test_a_document_is_the_same_whatever_was_written_before_it(name, detail):
    raw = CASES[name]
    other = renumbered(raw)
    assert solve(copy.deepcopy(other)).network.kind == solve(copy.deepcopy(raw)).network.kind
    forget_kinds()
    alone = document(raw, detail)
    forget_kinds()
    document(other, detail)                 # the kind's formulas are written for this one and kept
    assert document(raw, detail) == alone


def test_targets_that_do_not_sum_to_one_are_another_kind():
    """A softmax's δ = (a − y)/N holds only where every sample's targets sum to 1: the short form written for one
    network must not reach another whose targets do not."""
    one_hot = spec([2, 3, 3], ["sigmoid", "softmax"], loss="cross_entropy", samples=2, y=[[1, 0, 0], [0, 0, 1]])
    loose = spec([2, 3, 3], ["sigmoid", "softmax"], loss="cross_entropy", samples=2,
                 y=[[0.5, 0.2, 0.1], [0.1, 0.1, 0.2]])
    assert solve(one_hot).network.kind != solve(loose).network.kind
    short = r"\frac{1}{N} \left(\mathbf{a}^{(L)} - \mathbf{y}\right)"
    forget_kinds()
    alone = document(loose, "full")
    forget_kinds()
    assert short in document(one_hot, "full")
    after = document(loose, "full")
    assert after == alone and short not in after


def test_the_number_of_samples_is_part_of_the_kind():
    """The loss's 1/N and the batch's sums are in the formulas: two networks alike but for N are two kinds."""
    one, three = (spec([2, 2, 1], ["sigmoid", "sigmoid"], loss="mse", samples=n) for n in (1, 3))
    assert solve(one).network.kind != solve(three).network.kind
    forget_kinds()
    alone = document(one, "full")
    forget_kinds()
    document(three, "full")
    assert document(one, "full") == alone


def test_the_numbers_left_out_of_a_kind_are_fields_of_the_spec():
    """A field renamed in Spec would otherwise be silently part of every kind (safe) while its old name here
    excluded nothing: the list must name real fields."""
    assert NUMBERS <= {f.name for f in dataclasses.fields(Spec)}
