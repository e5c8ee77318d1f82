"""The house in figures: ``python -m tests.house`` prints what the redesign issue measures (cycles, hidden
imports, complex blocks, type errors, modules naming an activation, the largest module and function)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from tests.test_layers import EDGES, MODULES, ROOT, spellings

REGISTRY = "derive.model.registry"


def cycles() -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan)."""
    graph = {m: sorted({t for t, _, _ in edges if t in MODULES and t not in (m, "derive")}) for m, edges in EDGES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        for t in graph[m]:
            if t not in index:
                connect(t)
                low[m] = min(low[m], low[t])
            elif t in stack:
                low[m] = min(low[m], index[t])
        if low[m] == index[m]:
            component = []
            while True:
                t = stack.pop()
                component.append(t)
                if t == m:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in sorted(graph):
        if m not in index:
            connect(m)
    return found


def complex_blocks(limit: int) -> int:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--select", "C901", "--config",
                          f"lint.mccabe.max-complexity={limit}", "--output-format", "concise", "derive"],
                         capture_output=True, text=True, cwd=ROOT).stdout
    return sum(1 for line in out.splitlines() if "C901" in line)


def mypy_errors() -> int:
    out = subprocess.run([sys.executable, "-m", "mypy", "--check-untyped-defs", "derive"],
                         capture_output=True, text=True, cwd=ROOT).stdout
    found = re.search(r"Found (\d+) error", out)
    return int(found.group(1)) if found else 0


def largest() -> tuple[str, int, str, int]:
    """(module, its lines, function, its lines) of the largest module and the longest function."""
    module = max(MODULES, key=lambda m: len(MODULES[m].read_text(encoding="utf-8").splitlines()))
    best = ("", 0)
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > best[1]:
                    best = (f"{name}.{node.name}", size)
    return module, len(MODULES[module].read_text(encoding="utf-8").splitlines()), *best


def main() -> int:
    module, module_lines, function, function_lines = largest()
    naming = [m for m in sorted(MODULES) if m != REGISTRY and spellings(m)]
    rows = [
        ("modules", str(len(MODULES))),
        ("import cycles (types and in-function imports included)", str(len(cycles()))),
        ("imports of derive's modules inside functions", str(sum(nested for edges in EDGES.values()
                                                                  for _, _, nested in edges))),
        ("blocks above complexity 10 / 20 (ruff C901)", f"{complex_blocks(10)} / {complex_blocks(20)}"),
        ("mypy --check-untyped-defs errors", str(mypy_errors())),
        ("modules outside the registry naming an activation or loss", str(len(naming)) + (f" ({', '.join(naming)})"
                                                                                        if naming else "")),
        ("largest module", f"{module} ({module_lines} lines)"),
        ("longest function", f"{function} ({function_lines} lines)"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
