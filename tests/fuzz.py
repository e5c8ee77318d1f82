"""Mutated built-in examples through the JSON and the Markdown: ``python -m tests.fuzz --count 2400``.

Each mutation changes one to three things of a built-in example (its numbers scaled by 10^±k, the
learning rate up to 10⁷, the steps, an activation, the loss, the bias, the convention, the batch,
a width) and must end in a solution (JSON, Markdown short and full) or in derive's one-line error: a traceback, a wrong kind of
error, or a Markdown many times slower than its JSON is a finding. Seeded: the same mutations on
every run. ``tests/test_fuzz.py`` runs the first few in CI; this tool runs as many as asked.
"""

from __future__ import annotations

import argparse
import copy
import random
import signal
import sys
import time
import tomllib
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from derive.derived.solution import solve
from derive.errors import DeriveError
from derive.model.examples import example_names, example_text
from derive.model.registry import ACTIVATIONS, LOSSES
from derive.text.document import View, build
from derive.text.render import render_solution

SLOW_RATIO = 5          # the Markdown may take this many times its JSON …
SLOW_FLOOR = 5.0        # … or this many seconds, whichever is more
TIMEOUT = 120           # seconds for one format of one mutation


@dataclass(frozen=True)
class Finding:
    case: int
    what: str           # "traceback", "slow" or "timeout"
    detail: str
    spec: dict


def _scale(raw: dict, rng: random.Random) -> str:
    table, key = rng.choice([("data", "x"), ("init", "W1"), ("init", "W2"), ("data", "y")])
    if key not in raw.get(table, {}):
        return "nothing"
    exponent = rng.choice([-6, -3, 2, 3, 4, 6])
    raw[table][key] = _multiplied(raw[table][key], 10.0 ** exponent)
    return f"{table}.{key} × 10^{exponent}"


def _multiplied(value: Any, factor: float) -> Any:
    if isinstance(value, list):
        return [_multiplied(v, factor) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * factor
    return value


def _rate(raw: dict, rng: random.Random) -> str:
    raw["train"]["learning_rate"] = rng.choice([1e-6, 0.01, 5, 100, 1e4, 1e7])
    return f"learning_rate {raw['train']['learning_rate']}"


def _steps(raw: dict, rng: random.Random) -> str:
    raw["train"]["steps"] = rng.choice([1, 2, 5, 30])
    return f"steps {raw['train']['steps']}"


def _activation(raw: dict, rng: random.Random) -> str:
    """A hidden layer's activation (the output's stays, so that its loss still fits)."""
    hidden = [name for name, a in ACTIVATIONS.items() if not a.output_only]
    layers = len(raw["network"]["layers"]) - 1
    given = raw["network"]["activation"]
    chosen = [given] * layers if isinstance(given, str) else list(given)
    chosen[rng.randrange(max(1, layers - 1))] = rng.choice(hidden)
    raw["network"]["activation"] = chosen
    return f"activation {chosen}"


def _loss(raw: dict, rng: random.Random) -> str:
    raw["network"]["loss"] = rng.choice(sorted(LOSSES))
    return f"loss {raw['network']['loss']}"


def _bias(raw: dict, rng: random.Random) -> str:
    raw["network"]["bias"] = rng.choice(["none", "shared", "neuron"])
    return f"bias {raw['network']['bias']}"


def _batch(raw: dict, rng: random.Random) -> str:
    raw["train"]["batch"] = rng.choice(["full", "online", 1, 2])
    raw["train"]["momentum"] = rng.choice([0.0, 0.9])
    return f"batch {raw['train']['batch']}, momentum {raw['train']['momentum']}"


MUTATIONS: tuple[Callable[[dict, random.Random], str], ...] = (_scale, _scale, _rate, _steps, _activation, _loss,
                                                                 _bias, _batch)


def mutations(count: int, seed: int = 0) -> list[tuple[str, dict]]:
    """``count`` mutated examples, each with a line saying what was changed (seeded)."""
    rng = random.Random(f"derive-fuzz:{seed}")
    bases = {name: tomllib.loads(example_text(name)) for name in example_names()}
    cases = []
    for _ in range(count):
        name = rng.choice(sorted(bases))
        raw = copy.deepcopy(bases[name])
        changes = [rng.choice(MUTATIONS)(raw, rng) for _ in range(rng.randint(1, 3))]
        cases.append((f"{name}: " + "; ".join(changes), raw))
    return cases


REFUSED: list[str] = []     # the refusals seen, for the log


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def _timed(fn: Callable[[], Any]) -> tuple[float, str | None]:
    """Seconds taken and None, or the finding's kind and its text."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT)
    start = time.perf_counter()
    try:
        fn()
        return time.perf_counter() - start, None
    except DeriveError as exc:          # a refusal: must be one line
        text = str(exc)
        REFUSED.append(text)
        return time.perf_counter() - start, None if "\n" not in text else f"refusal of several lines: {text}"
    except _Timeout:
        return TIMEOUT, "timeout"
    except Exception:                   # noqa: BLE001 (every other exception is the finding)
        return time.perf_counter() - start, traceback.format_exc(limit=6)
    finally:
        signal.alarm(0)


def _full(raw: dict) -> str:
    """The Markdown in --detail full: the matrix form with its values, the layer-wise recursion, every chain."""
    s = solve(raw)
    return render_solution(s, "md", doc=build(s, view=View(detail="full")))


def run(count: int, seed: int = 0, start: int = 0, log: Callable[[str], None] = print) -> list[Finding]:
    """Every mutation through solve's JSON and Markdown (short and full); the findings."""
    findings = []
    for case, (label, raw) in enumerate(mutations(start + count, seed)[start:], start):
        json_s, json_problem = _timed(lambda: solve(raw).json())
        md_s, md_problem = _timed(lambda: render_solution(solve(raw), "md"))
        _, full_problem = _timed(lambda: _full(raw))
        for problem in (json_problem, md_problem, full_problem):
            if problem is not None:
                findings.append(Finding(case, "timeout" if problem == "timeout" else "traceback", problem, raw))
        if md_problem is None and md_s > max(SLOW_FLOOR, SLOW_RATIO * json_s):
            findings.append(Finding(case, "slow", f"Markdown {md_s:.1f} s, JSON {json_s:.1f} s", raw))
        refused = f"  refused: {REFUSED[-1][:90]}" if REFUSED and json_s + md_s < 0.05 else ""
        log(f"{case:5d} json {json_s:6.2f} s md {md_s:6.2f} s  {label}{refused}")
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--start", type=int, default=0, help="skip the first START mutations")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    findings = run(args.count, args.seed, args.start)
    for f in findings:
        print(f"\n# case {f.case}: {f.what}\n{f.detail}\n{f.spec}")
    print(f"\n{args.count} mutations, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
