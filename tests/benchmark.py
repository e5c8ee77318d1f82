"""Speed of the engine, printed as one Markdown table: ``python -m tests.benchmark``.

Each benchmark is a function that returns rows; add one with the ``@benchmark`` decorator (rendering
a solution, grading claims, …). ``--only WORD`` runs the benchmarks whose name contains WORD.
Times are the best of a few runs of wall-clock time on this machine, not assertions.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import sympy as sp
from sympy.core.cache import clear_cache

from derive import solve
from derive.check.derivation import Derivation, Line, grade_derivation
from derive.check.grading import benchmark_grading
from derive.check.verdict import check_claim, check_claims
from derive.errors import ClaimError, SpecError
from derive.model.backprop import derive
from derive.model.examples import example_text
from derive.model.network import build
from derive.model.spec import parse
from derive.text.render import render_solution


@dataclass
class Row:
    benchmark: str
    network: str
    parameters: int | str
    seconds: float
    target: str = ""
    result: str = ""


BENCHMARKS: list[Callable[[], list[Row]]] = []


def benchmark(fn: Callable[[], list[Row]]) -> Callable[[], list[Row]]:
    """Register a benchmark: a function returning table rows."""
    BENCHMARKS.append(fn)
    return fn


def best(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The shortest wall-clock time of ``repeat`` runs, each with SymPy's cache emptied and the garbage of the
    runs before collected (so that no run pays for another's), and the last result."""
    times, result = [], None
    for _ in range(repeat):
        clear_cache()
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def sigmoid_net(layers: list[int], samples: int = 1, steps: int = 1) -> dict:
    """A sigmoid network with per-unit biases, half_sse, random initial values from seed 1."""
    x = [[round(0.1 * ((i + n) % 7) - 0.3, 1) for i in range(layers[0])] for n in range(samples)]
    y = [[round(0.1 * ((j + n) % 9), 1) for j in range(layers[-1])] for n in range(samples)]
    return {"network": {"layers": layers, "activation": "sigmoid", "bias": "neuron", "loss": "half_sse"},
            "data": {"x": x, "y": y}, "init": {"seed": 1}, "train": {"learning_rate": 0.5, "steps": steps}}


def to_toml(raw: dict) -> str:
    """A spec dict of tables of numbers, strings and lists as TOML text."""
    lines = []
    for table, values in raw.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def solve_json(raw: dict) -> str:
    """What ``derive solve --format json`` does, in-process: derive, evaluate, serialise."""
    return json.dumps(solve(raw).json(), indent=2) + "\n"


def solve_process(raw: dict) -> str:
    """``python -m derive solve FILE --format json`` as a separate process (includes imports)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.toml"
        path.write_text(to_toml(raw), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "derive", "solve", str(path), "--format", "json"],
                              capture_output=True, text=True, check=True)
        return done.stdout


def size(raw: dict) -> int:
    return len(solve(raw).network.parameters)


def shape(raw: dict) -> str:
    return "-".join(map(str, raw["network"]["layers"]))


# -- the benchmarks ------------------------------------------------------------------------------

@benchmark
def naive_4881() -> list[Row]:
    """derive against sympy.diff of the whole loss written out in the parameters (inputs as numbers)."""
    raw = sigmoid_net([4, 8, 8, 1])
    n = size(raw)
    fast, _ = best(lambda: solve_json(raw))
    process, _ = best(lambda: solve_process(raw))
    spec = solve(raw).spec
    symbolic, _ = best(lambda: derive(build(spec)))

    sol = solve(raw)
    net, values = sol.network, sol.training.first.parameters

    def naive(evaluate: bool):
        env = {**dict(zip(net.inputs, sol.spec.x[0])), **dict(zip(net.targets, sol.spec.y[0]))}
        for v in net.order:                                # E as one expression in the parameters
            env[v] = net.definitions[v].xreplace(env)
        E = env[net.loss]
        grads = [sp.diff(E, p) for p in net.parameters]
        return [g.xreplace(values).evalf(60) for g in grads] if evaluate else grads

    diff_only, _ = best(lambda: naive(False), repeat=1)
    diff_eval, numbers = best(lambda: naive(True), repeat=1)
    exact = [sol.training.first.gradient[p] for p in net.parameters]
    agree = all(abs(a - b) < 1e-40 for a, b in zip(numbers, exact))
    return [
        Row("derive solve --format json (in-process)", shape(raw), n, fast, "≥ 20× faster than naive",
            f"{diff_eval / fast:.0f}× faster than naive diff + values"),
        Row("derive solve --format json (new process)", shape(raw), n, process, "",
            f"{diff_eval / process:.0f}× faster than naive diff + values, imports included"),
        Row("derive: the symbolic derivation alone (build + derive)", shape(raw), n, symbolic, "",
            f"{diff_only / symbolic:.0f}× faster than naive diff alone"),
        Row("naive: sympy.diff of the expanded loss, every parameter", shape(raw), n, diff_only, "",
            "symbolic derivatives only, no numbers"),
        Row("naive: … and each evaluated at the parameters (60 digits)", shape(raw), n, diff_eval, "",
            "same gradients as derive" if agree else "DIFFERENT gradients"),
    ]


@benchmark
def large_32_32_32_10() -> list[Row]:
    raw = sigmoid_net([32, 32, 32, 10])
    n = size(raw)
    fast, _ = best(lambda: solve_json(raw), repeat=2)
    process, _ = best(lambda: solve_process(raw), repeat=2)
    return [Row("derive solve --format json (in-process)", shape(raw), n, fast, "< 10 s",
                "met" if fast < 10 else "MISSED"),
            Row("derive solve --format json (new process)", shape(raw), n, process, "< 10 s",
                "met" if process < 10 else "MISSED")]


@benchmark
def linear_growth() -> list[Row]:
    """Time per parameter stays about constant as the network grows."""
    rows = []
    for layers in ([8, 8, 8, 10], [16, 16, 16, 10], [24, 24, 24, 10], [32, 32, 32, 10], [16] * 9 + [10]):
        raw = sigmoid_net(layers)
        n = size(raw)
        seconds, _ = best(lambda: solve_json(raw), repeat=2)
        rows.append(Row("growth: solve --format json", shape(raw), n, seconds, "about linear",
                        f"{seconds / n * 1e3:.2f} ms per parameter"))
    return rows


@benchmark
def training_10000_steps() -> list[Row]:
    """Mazur's 2-2-2 network, 10,000 steps: the first step exact, the rest on the compiled float path."""
    raw = {"network": {"layers": [2, 2, 2], "activation": "sigmoid", "bias": "shared", "loss": "half_sse"},
           "data": {"x": [[0.05, 0.10]], "y": [[0.01, 0.99]]},
           "init": {"W1": [[0.15, 0.20], [0.25, 0.30]], "b1": 0.35, "W2": [[0.40, 0.45], [0.50, 0.55]], "b2": 0.60},
           "train": {"learning_rate": 0.5, "steps": 10_000, "freeze": ["b1", "b2"]}}
    seconds, sol = best(lambda: solve(raw).training)
    return [Row("10,000 training steps (solve + train)", "2-2-2", 10, seconds, "a few seconds",
                f"error at the start of step 10,000: {sol.history[9999]:.10f} (Mazur: 0.0000351085)")]


@benchmark
def batch_training() -> list[Row]:
    raw = sigmoid_net([4, 8, 8, 1], samples=20, steps=1000)
    seconds, _ = best(lambda: solve(raw).training, repeat=1)
    return [Row("1,000 training steps, batch of 20", shape(raw), size(raw), seconds, "",
                f"{seconds / 1000 * 1e3:.2f} ms per step")]


@benchmark
def render_markdown_4881() -> list[Row]:
    """The full Markdown worked solution of a 4-8-8-1 network, derivation and verification included."""
    raw = sigmoid_net([4, 8, 8, 1])
    seconds, text = best(lambda: render_solution(solve(raw), "md"), repeat=2)
    return [Row("derive solve --format md (in-process)", shape(raw), size(raw), seconds, "a few seconds",
                f"{len(text):,} characters")]


@benchmark
def render_growth() -> list[Row]:
    """Documents against the JSON of the same network (in-process, the solution made afresh each time): the
    default (short) Markdown, LaTeX and HTML, their ratio to the JSON and the time's growth with the parameters."""
    rows, points = [], []
    for width in (8, 12, 16):
        raw = sigmoid_net([width] * 4)
        n = size(raw)
        json_s, _ = best(lambda: solve_json(raw), repeat=5)
        # the first document of a network in a process also prints the verification's code (kept after that for
        # the other formats, the gallery's and an exam's variants): its own row, then each format's best of 5
        first, _ = best(lambda: render_solution(solve(raw), "md"), repeat=1)
        rows.append(Row("derive solve --format md (in-process, short, the network's first document)", shape(raw),
                        n, first, "", f"{first / json_s:.1f}× its JSON ({json_s:.2f} s)"))
        for fmt in ("md", "tex", "html"):
            seconds, _ = best(lambda: render_solution(solve(raw), fmt), repeat=5)
            default = width == 16 and fmt == "md"          # the default document of a 16-16-16-16 network
            target = "≤ 2× its JSON" + ("; < 3 s" if default else "")
            ratio = seconds / json_s
            result = f"{ratio:.1f}× its JSON ({json_s:.2f} s): {'met' if ratio <= 2 else 'not met yet'}"
            if default:
                result += f"; under 3 s: {'met' if seconds < 3 else 'not met yet'}"
            rows.append(Row(f"derive solve --format {fmt} (in-process, short)", shape(raw), n, seconds, target, result))
            if fmt == "md":
                points.append((n, seconds))
    (n0, t0), (n1, t1) = points[0], points[-1]
    exponent = math.log(t1 / t0) / math.log(n1 / n0)
    rows.append(Row("growth: Markdown, fitted exponent t ∝ n^k", f"{shape(sigmoid_net([8] * 4))} … "
                    f"{shape(sigmoid_net([16] * 4))}", n1, t1, "about linear (k ≈ 1)", f"k = {exponent:.2f}"))
    return rows


@benchmark
def render_process() -> list[Row]:
    """The issue's own measure: the CPU time of a whole ``derive solve`` process (its imports, the network's first
    document, its templates) for each format against the JSON's, from a 2-2-1 network up. A new process pays for
    what the in-process rows find kept: small networks are mostly this."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def cpu(*argv: str) -> float:
        command = [sys.executable, "-m", "derive", "solve", *argv]
        subprocess.run(command, check=True, capture_output=True, env=env)     # bytecode and templates compiled
        times = []
        for _ in range(5):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(command, check=True, capture_output=True, env=env)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        return min(times)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layers in ([2, 2, 1], [8] * 4, [16] * 4):
            raw = sigmoid_net(layers)
            path = Path(tmp) / "net.toml"
            path.write_text(to_toml(raw), encoding="utf-8")
            json_s = cpu(str(path), "--format", "json")
            for fmt in ("md", "tex", "html"):
                seconds = cpu(str(path), "--format", fmt)
                ratio = seconds / json_s
                rows.append(Row(f"derive solve --format {fmt} (new process, CPU)", shape(raw), size(raw), seconds,
                                "≤ 2× its JSON", f"{ratio:.1f}× its JSON ({json_s:.2f} s): "
                                f"{'met' if ratio <= 2 else 'not met yet'}"))
    return rows


def saturated(name: str, scale: int) -> dict:
    """A built-in example with every input multiplied by ``scale``: units saturate by thousands of digits."""
    raw = tomllib.loads(example_text(name))
    raw["data"]["x"] = [[str(scale * sp.Rational(str(v))) for v in row] for row in raw["data"]["x"]]
    return raw


@benchmark
def render_saturated() -> list[Row]:
    """The Markdown of examples whose inputs are multiplied by 10⁴ (found by fuzzing, once 20 s and more)
    against their JSON: the verification's finite differences and sympy.diff then need thousands of digits."""
    rows = []
    for name in ("softmax-233", "sigmoid-451-batch"):
        raw = saturated(name, 10 ** 4)
        json_s, _ = best(lambda: solve_json(raw), repeat=1)
        seconds, _ = best(lambda: render_solution(solve(raw), "md"), repeat=1)
        ratio = seconds / json_s
        rows.append(Row(f"derive solve --format md, {name} with inputs × 10⁴ (in-process)", shape(raw), size(raw),
                        seconds, "a few times its JSON", f"{ratio:.1f}× its JSON ({json_s:.2f} s)"))
    return rows


@benchmark
def grade_a_class() -> list[Row]:
    """200 students × 10 claims (numbers and formulas, right and wrong) on the 2-2-2 network."""
    solution = solve("sigmoid-222")
    claims = ([f"dE/dw{i} = 0.05" for i in range(1, 9)] + [f"w{i}' = 0.3" for i in range(1, 9)]
              + ["o1 = 0.75", "o2 = 0.77", "h1 = 0.59", "h2 = 0.6", "E = 0.3",
                 "dE/dw5 = (o1 - y1)*o1*(1 - o1)*h1", "dE/dw6 = (o1 - y1)*h2", "dE/do1 = o1 - y1",
                 "delta_o1 = (o1 - y1)*o1*(1 - o1)", "dE/dw1 = (o1 - y1)*w5*x1", "h1 = sigmoid(z_h1)",
                 "z_h1 = w1*x1 + w2*x2 + b1", "o2 = sigmoid(w7*h1 + w8*h2 + b2)",
                 "dE/db2 = (o1 - y1)*o1*(1 - o1) + (o2 - y2)*o2*(1 - o2)"])
    check_claims(solution, claims[:1])                  # start-up: the model and its random points
    thirty, verdicts = best(lambda: check_claims(solution, claims), repeat=3)
    timing = benchmark_grading(students=200, per_student=10, spec="sigmoid-222")
    return [Row(f"derive check: {len(verdicts)} claims", "2-2-2", 10, thirty, "well under a second",
                f"{sum(v.holds for v in verdicts)} hold, after start-up"),
            Row("derive check: 200 students × 10 claims", "2-2-2", 10, timing["grading_seconds"], "practical",
                f"{timing['claims'] / timing['grading_seconds']:.0f} claims per second")]


@benchmark
def grade_derivations() -> list[Row]:
    """200 derivations × 10 lines (numbers, formulas and matrices, right and wrong) on the 2-2-2 network,
    each line against the truth and against the student's own earlier lines (error carried forward)."""
    solution = solve("sigmoid-222")
    pool = ["dE/do1 = 0.7414", "do1/dz_o1 = 0.1868", "delta_o1 = 0.1385", "dE/dw5 = 0.7414*0.1868*0.5933",
            "dE/dw5 = 0.0822", "dE/dw5 = 0.0900", "w5' = 0.3589", "w5' = 0.4411", "dE/dw1 = 0.000439",
            "delta_o1 = (o1 - y1)*o1*(1 - o1)", "dE/dw6 = delta_o1*h2", "Delta2 = [[0.1385], [-0.0381]]",
            "Delta2 = [[0.14], [0.04]]", "dE/dW2 = Delta2 * A1^T", "dE/dW2 = A1 * Delta2^T",
            "Delta1 = (W2^T * Delta2) .* sigma'(Z1)", "Delta1 = W2^T * Delta2", "dE/dW1 = Delta1 * X^T",
            "dE/dW2 = [[0.0822, 0.0827], [-0.0226, -0.0227]]", "W2' = W2 - 0.5 * dE/dW2"]
    rng = random.Random(7)
    derivations = [Derivation(f"sheet{i}", "", tuple(Line(k + 1, rng.choice(pool)) for k in range(10)))
                   for i in range(200)]
    start = time.perf_counter()
    graded = [grade_derivation(solution, d) for d in derivations]
    seconds = time.perf_counter() - start
    lines = sum(len(rows) for rows in graded)
    return [Row("derive check --derivation: 200 students × 10 lines", "2-2-2", 10, seconds, "< 10 s",
                f"{'met' if seconds < 10 else 'not met'}: {lines / seconds:.0f} lines per second, matrices included")]


@benchmark
def exam_50_variants() -> list[Row]:
    """50 variants of the 2-2-2 exercise, every file (sheets, keys with worked solutions, Moodle, JSON)."""
    times, files = {}, 0
    for jobs in ("0", "1"):         # 0: one worker per core (the default); 1: the same run on one core
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "derive", "exam", "sigmoid-222", "--variants", "50", "--seed", "1",
                       "--out", str(Path(tmp) / "exam"), *(["--jobs", jobs] if jobs != "0" else [])]
            times[jobs], _ = best(lambda: subprocess.run(command, check=True, capture_output=True), repeat=1)
            files = len(list((Path(tmp) / "exam").iterdir()))
    return [Row(f"derive exam --variants 50 (new process, {os.cpu_count()} cores)", "2-2-2", 10, times["0"],
                "well under a minute", f"{files} files, {times['1'] / times['0']:.1f}× the speed of one core"),
            Row("derive exam --variants 50 (new process, --jobs 1)", "2-2-2", 10, times["1"], "", f"{files} files")]


@benchmark
def start_up() -> list[Row]:
    """A command's start-up: it imports only the stages it uses (`derive examples` and `--help` no SymPy)."""
    # as an installed package starts: from its compiled bytecode (pip writes it; a PYTHONDONTWRITEBYTECODE in
    # the environment would make every start compile derive anew), after one run that writes it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(*argv: str) -> float:
        command = [sys.executable, *argv]
        subprocess.run(command, check=True, capture_output=True, env=env)
        seconds, _ = best(lambda: subprocess.run(command, check=True, capture_output=True, env=env), repeat=5)
        return seconds

    def alternately(*commands: list[str], rounds: int = 9) -> list[float]:
        """The best time of each command, run in turns: a ratio of two starts is only as steady as the machine
        was alike for both (a virtual machine's starts vary by a third from one second to the next)."""
        times: list[list[float]] = [[] for _ in commands]
        for command in commands:
            subprocess.run([sys.executable, *command], check=True, capture_output=True, env=env)
        for _ in range(rounds):
            for i, command in enumerate(commands):
                start = time.perf_counter()
                subprocess.run([sys.executable, *command], check=True, capture_output=True, env=env)
                times[i].append(time.perf_counter() - start)
        return [min(t) for t in times]

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "net.toml"
        spec.write_text(to_toml(sigmoid_net([4, 8, 8, 1])), encoding="utf-8")
        # the CLI pauses the cyclic garbage collector while it loads SymPy and its stages, then freezes what they
        # made (so that neither the collector's passes nor its last one at exit walk them): SymPy loaded that way
        # is the second comparison, and the ratio to it is derive's own imports and work
        sympy_alone, sympy_paused, json_4881 = alternately(
            ["-c", "import sympy"], ["-c", "import gc; gc.disable(); import sympy; gc.freeze()"],
            ["-m", "derive", "solve", str(spec), "--format", "json"])
    rows = [Row("start-up: python -c 'import sympy' (for comparison)", "", "", sympy_alone),
            Row("start-up: import sympy as derive loads it, the collector paused and its objects frozen "
                "(for comparison)", "", "", sympy_paused)]
    for argv, target in ((["--help"], "< 0.1 s"), (["examples"], "< 0.1 s")):
        rows.append(Row(f"start-up: derive {' '.join(argv)} (new process)", "", "", run("-m", "derive", *argv),
                        target))
    rows.append(Row("derive solve --format json (new process)", "4-8-8-1", 121, json_4881, "≤ 1.3× import sympy",
                    f"{json_4881 / sympy_alone:.2f}× import sympy; {json_4881 / sympy_paused:.2f}× SymPy loaded as "
                    f"derive loads it"))
    return rows


HUGE_CLAIMS = ["o = " + "(" * 1000 + "o" + ")" * 1000, "o = " + "-" * 1500 + "o", "o = " + "sigmoid(" * 300 + "o" +
               ")" * 300, "o = " + "+".join(["o"] * 1000), "o = " + "9" * 5000, "o = " + "o^" * 400 + "o",
               "o = " + "x" * 6000, "o = 9**9**9**9", "o = exp(exp(exp(exp(9))))"]
# judged, not refused: their exact fractions would not fit in memory (4.6 GB and minutes before)
TINY_CLAIMS = ["dE/dw5 = exp(-1e20)", "dE/dw5 = exp(-1e100)", "dE/dw5 = 0.0822 + exp(-1e20)"]


@benchmark
def refusals() -> list[Row]:
    """Hostile claims and specs are refused at once: the slowest of each kind (the tests check the refusals)."""
    linear = solve("linear-221")
    linear.training

    def refuse(text: str) -> None:
        try:
            check_claim(linear, text)
        except ClaimError:
            return
        raise AssertionError(f"not refused: {text[:40]}")

    def refuse_spec(huge: str) -> None:
        try:
            parse({"network": {"layers": [2, 1]}, "data": {"x": [[huge, 1]], "y": [[1]]}})
        except SpecError:
            return
        raise AssertionError(f"not refused: {huge}")

    claims = max(best(lambda t=t: refuse(t), repeat=3)[0] for t in HUGE_CLAIMS)
    sigmoid = solve("sigmoid-222")
    tiny = max(best(lambda t=t: check_claim(sigmoid, t), repeat=3)[0] for t in TINY_CLAIMS)
    specs = max(best(lambda h=h: refuse_spec(h), repeat=3)[0] for h in ("1e999999999", "-1e999999999", "1e-999999999"))
    return [Row(f"derive check: the slowest of {len(HUGE_CLAIMS)} huge claims refused", "2-2-1", 6, claims,
                "milliseconds"),
            Row(f"derive check: the slowest of {len(TINY_CLAIMS)} claims of 10^(-10^20) and less judged", "2-2-2", 10,
                tiny, "milliseconds"),
            Row("a spec number 1e999999999 refused", "", "", specs, "milliseconds")]


# -- the table -----------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    head = "| benchmark | network | parameters | time | target | result |\n| --- | --- | ---: | ---: | --- | --- |\n"
    return head + "".join(f"| {r.benchmark} | {r.network} | {r.parameters} | {r.seconds:.3f} s | {r.target} | "
                          f"{r.result} |\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="WORD", help="run only the benchmarks whose name contains WORD")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for fn in BENCHMARKS:
        if args.only is None or args.only in fn.__name__:
            rows += fn()
    cpu = os.cpu_count()
    print(table(rows), end="")
    print(f"\nPython {sys.version.split()[0]}, SymPy {sp.__version__}, {cpu} CPUs; best of a few runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
