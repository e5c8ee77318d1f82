"""The house: derive's stages as layers whose imports only point down, with no cycles and no hidden imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from derive.cli import EXAM_DEFAULT_FORMATS, EXAM_FORMATS
from derive.exam.sheets import DEFAULT_FORMATS, FORMATS
from derive.model import registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "derive"

# Top to bottom: a module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    # the package's public names (derive.solve …) are loaded on first use (PEP 562): `import derive` is light
    ("derive", "derive.__main__", "derive.cli"),
    ("derive.exam",),
    ("derive.check",),
    ("derive.text",),
    ("derive.derived",),
    ("derive.numeric",),
    ("derive.model",),
    ("derive.io", "derive.errors", "derive.parallel", "derive.version"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module.startswith(prefix + ".") and prefix != "derive"     # "derive" is the package itself
            if module == prefix or inside:
                if best is None or len(prefix) > len(best[1]):
                    best = (rank, prefix)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py"
    return best[0]


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The derive modules an import statement loads (a name imported from a package that is a module counts)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "derive" or a.name.startswith("derive.")]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            package = package.rsplit(".", 1)[0]
        base = f"{package}.{base}" if base else package
    if base != "derive" and not base.startswith("derive."):
        return []
    targets = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return targets or [base]


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of derive's own modules."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    return [(target, node.lineno, id(node) in inner) for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) for target in resolve(module, node)]


EDGES = {m: imports(m) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = [f"line {line}: {target}" for target, line, _ in EDGES[module]
              if target != module and layer_of(target) < layer_of(module)]
    assert not upward, f"{module} imports a higher layer: {upward}"


def test_no_imports_inside_functions():
    # the CLI loads the chosen command's stage through one function (cli.load_stage), by name
    inner = [f"{m}:{line} {target}" for m, edges in EDGES.items() for target, line, nested in edges if nested]
    assert not inner


def test_no_cycles():
    graph = {m: {t for t, _, _ in edges if t in MODULES and t != m and t != "derive"} for m, edges in EDGES.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_every_module_says_its_job_in_one_line():
    missing = [m for m, p in MODULES.items() if not (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
                                                      or "").strip()]
    assert not missing


def test_cli_knows_the_exam_formats():
    assert (EXAM_FORMATS, EXAM_DEFAULT_FORMATS) == (FORMATS, DEFAULT_FORMATS)


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return set(out.split())


@pytest.mark.parametrize("argv, absent", [
    (["--help"], {"sympy", "jinja2"}),
    (["examples"], {"sympy", "jinja2"}),
    (["solve", "linear-221", "--format", "json"], {"jinja2", "derive.check", "derive.exam", "derive.text"}),
])
def test_a_command_loads_only_its_stages(argv, absent):
    code = f"import contextlib, io\nfrom derive.cli import main\nwith contextlib.redirect_stdout(io.StringIO()):\n" \
           f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass"
    assert not loaded_after(code) & absent


# -- registry or nothing -----------------------------------------------------------------------------

REGISTRY = "derive.model.registry"
# Modules that still spell activations or losses by name; the list only shrinks: the checker's typical mistakes
# (diagnose) and its own 40-digit evaluator (quantities) move with the one catalogue and the one evaluator.
NOT_YET: set[str] = set()


def registry_names() -> tuple[set[str], set[str]]:
    classes = {name for name, value in vars(registry).items()
               if isinstance(value, type) and value.__module__ == REGISTRY and issubclass(value, sp.Function)}
    return set(registry.ACTIVATIONS) | set(registry.LOSSES), classes


def spellings(module: str) -> list[str]:
    """Where a module names an activation or loss: a string equal to its name, or one of the registry's functions."""
    names, classes = registry_names()
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings:
            found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Name) and node.id in classes or isinstance(node, ast.alias) and node.name in classes:
            found.append(f"line {getattr(node, 'lineno', '?')}: {getattr(node, 'id', None) or node.name}")
    return found


@pytest.mark.parametrize("module", sorted(set(MODULES) - {REGISTRY}))
def test_registry_or_nothing(module):
    # every fact about an activation or a loss lives in its registry entry; elsewhere, code asks the entry
    found = spellings(module)
    if module in NOT_YET:
        assert found, f"{module} no longer names activations: take it off NOT_YET"
    else:
        assert not found, f"{module} names activations or losses outside the registry: {found}"


# -- the house's static checks: types and short functions ---------------------------------------------

def run_tool(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, cwd=ROOT)


def test_types_check():
    # mypy with pyproject's settings (check_untyped_defs): every function's body is type-checked
    result = run_tool("mypy", "derive")
    assert result.returncode == 0, result.stdout[-3000:]


def test_functions_are_short():
    # ruff's McCabe complexity at most 10 (pyproject's [tool.ruff.lint.mccabe]), and no unused import or name
    result = run_tool("ruff", "check", "--select", "C901,F", "derive")
    assert result.returncode == 0, result.stdout[-3000:]
