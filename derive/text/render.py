"""Documents from templates: the one Jinja environment, and Markdown, LaTeX and PDF worked solutions."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from derive.derived.solution import Solution
from derive.errors import RenderError
from derive.io import write_files
from derive.numeric.rounding import DEFAULT_PRECISION, Rounding, check_precision
from derive.text.chains import LINE, row_pieces
from derive.text.document import Document, View, build
from derive.text.escape import escape_latex, escape_markdown, escape_xml, markdown_chars
from derive.text.mathml import mathml
from derive.text.model import Equation, Row
from derive.text.layout import MARGIN, RADIUS
from derive.text.printer import joined_width, width

TEMPLATES = {"md": "solution.md.j2", "tex": "solution.tex.j2", "html": "solution.html.j2"}
# characters of a formula (printer.width) in one printed line of an HTML page: 610 px at 10.5 pt; wider than
# chains.LINE (64, the LaTeX page's line, by which the document model breaks long formulas), so a row the model
# kept whole is shrunk only when the page cannot hold it
PRINTED_LINE = 70
REVEALS = ("open", "folded")    # HTML: every step open, or folded for a student to try first
TEX_PACKAGES = "Debian/Ubuntu: sudo apt-get install texlive-latex-extra texlive-pictures latexmk"
LATEX_DELIMITERS = dict(block_start_string="((*", block_end_string="*))", variable_start_string="(((",
                        variable_end_string=")))", comment_start_string="((=", comment_end_string="=))",
                        line_statement_prefix=None, line_comment_prefix=None)


# -- the environment ----------------------------------------------------------------------------

def template_dirs(template_dir: str | Path | None = None) -> list[Path]:
    """Where templates are looked up: the user's folder, the installed copy, the source checkout."""
    dirs = [Path(template_dir)] if template_dir is not None else []
    installed = resources.files("derive") / "templates"
    checkout = Path(__file__).resolve().parents[2] / "templates"
    if installed.is_dir():                  # a wheel: hatchling copied templates/ into the package
        dirs.append(Path(str(installed)))
    elif checkout.is_dir():                 # a source checkout (editable install)
        dirs.append(checkout)
    return dirs


def _built_in_dirs() -> list[Path]:
    return template_dirs(None)


def _prose(fmt: str) -> Callable[[str], str]:
    """Our own sentences with $math$ inside: the text escaped for ``fmt``, the math kept (as MathML in HTML)."""
    plain = {"md": markdown_chars, "tex": escape_latex}.get(fmt, escape_xml)
    formula: Callable[[str], str] = _inline_math if fmt == "html" else (lambda p: f"${p}$")

    def prose(text: str) -> str:
        parts = text.split("$")
        if len(parts) % 2 == 0:
            raise RenderError(f"unbalanced $ in generated prose: {text[:60]!r}")
        return "".join(plain(p) if i % 2 == 0 else formula(p) for i, p in enumerate(parts))

    return prose


def _inline_math(latex: str) -> str:
    """A formula in a sentence, a list or a table: in a box that scrolls when it is wider than the screen."""
    return f'<span class="m">{mathml(latex)}</span>'


def _text(fmt: str) -> Callable[[str], str]:
    """User text (a title, a description, a label) as inert text of ``fmt``."""
    if fmt == "md":
        return escape_markdown
    if fmt == "tex":
        return lambda s: escape_latex(s.strip())
    return escape_xml


# the objects whose attributes jinja2.sandbox.is_internal_attribute looks into beyond a leading "__"
_INTERNAL = (types.FunctionType, types.MethodType, type, types.CodeType, types.TracebackType, types.FrameType,
             types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, deciding once per type whether an object can have internal attributes: a page reads
    25,000 attributes of the document's records, and the sandbox tested each against nine kinds of object."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain: dict[type, bool] = {}

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        kind = type(obj)
        plain = self._plain.get(kind)
        if plain is None:
            plain = self._plain[kind] = not issubclass(kind, _INTERNAL)
        # for any other object is_internal_attribute says attr.startswith("__"), which "_" covers
        return not attr.startswith("_") if plain else super().is_safe_attribute(obj, attr, value)


def environment(fmt: str, template_dir: str | Path | None = None) -> jinja2.Environment:
    """The Jinja environment for ``fmt`` ("md", "tex", "xml", "svg", …): strict, sandboxed, with our filters.

    Templates are looked up in ``template_dir`` first, then in the built-in folders; a user's
    template can extend a built-in one as ``default/NAME`` and override single blocks. LaTeX
    templates (``fmt == "tex"``) use ``((* *))``, ``((( )))`` and ``((= =))`` so TeX braces never clash.
    Filters: ``text`` (escape user text for fmt), ``prose`` (our sentences with $math$), ``md``,
    ``latex``, ``xml`` (explicit escapes), ``coord`` (a float for plot coordinates).

    >>> environment("md").from_string("{{ t | text }}").render(t="$x$")
    '\\\\$x\\\\$'
    """
    built_in = jinja2.FileSystemLoader([str(d) for d in _built_in_dirs()])
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise RenderError(f"--template-dir {template_dir}: no such folder")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders += [built_in, jinja2.PrefixLoader({"default": built_in})]
    options = dict(LATEX_DELIMITERS) if fmt == "tex" else {}
    env = _Sandbox(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                               autoescape=False, trim_blocks=True, lstrip_blocks=True,
                               keep_trailing_newline=True, bytecode_cache=_compiled_templates(), **options)
    env.filters.update(text=_text(fmt), prose=_prose(fmt), md=escape_markdown, latex=escape_latex, xml=escape_xml,
                       coord=lambda v: format(float(v), ".8g"), math=lambda t: _inline_math(str(t)), width=width,
                       printed=_printed_scale, lines=_lines, overflows=_overflows)
    env.globals.update(chart=chart)
    return env


class _QuietCache(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates kept between processes, by each template's checksum (an edited template is
    compiled afresh): compiling a document's templates was a tenth of a small network's ``derive solve``. A cache
    that cannot be read or written only means compiling again."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:       # a cache file cut short or spoilt (pickle and marshal raise many kinds): as if absent
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@lru_cache(maxsize=None)
def _compiled_templates() -> jinja2.BytecodeCache | None:
    """The cache of compiled templates in the user's cache folder ($XDG_CACHE_HOME or ~/.cache, then
    derive/templates; DERIVE_TEMPLATE_CACHE names another, or "off"), None where it cannot be made."""
    chosen = os.environ.get("DERIVE_TEMPLATE_CACHE", "")
    if chosen == "off":
        return None
    folder = Path(chosen) if chosen else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
        "derive" / "templates"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (OSError, RuntimeError):         # no home, a read-only disk: compile every time
        return None
    return _QuietCache(str(folder))


def kept_environment(fmt: str, template_dir: str | Path | None = None) -> jinja2.Environment:
    """``environment(fmt, template_dir)``, made once per process: Jinja compiles a template once per environment,
    which cost a document a tenth of its time (a template changed on disk is still reloaded: auto_reload)."""
    if template_dir is not None and not Path(template_dir).is_dir():
        raise RenderError(f"--template-dir {template_dir}: no such folder")
    return _kept(fmt, None if template_dir is None else str(template_dir))


@lru_cache(maxsize=None)
def _kept(fmt: str, template_dir: str | None) -> jinja2.Environment:
    return environment(fmt, template_dir)


def _printed_scale(rows: Sequence) -> str:
    """How much a derivation's rows are shrunk on paper, which cannot scroll (as LaTeX's adjustbox does): "1" or less."""
    widest = max((width(row.tex) for row in rows), default=0.0)
    return "1" if widest <= PRINTED_LINE else f"{PRINTED_LINE / widest:.2f}"


LEFT = 4.0      # characters (printer.width) a display's left-hand sides take at least: ∂e₁/∂W⁽¹⁾ beside a shorter one


def _lines(eq: Equation, pack: bool = True) -> list[list[Row]]:
    """LaTeX: the rows of a derivation after its formula (its first row and the rows that continue it), on as few
    lines as fit (chains.LINE) beside the display's left-hand sides, one after the other as a derivation that
    fits whole is written; a line that continues an expression is indented by \\qquad. ``pack=False``: a row a
    line (a display shrunk to the page's width, which a longer line would shrink further)."""
    formula = next((k for k, row in enumerate(eq.rows[1:], 1) if row.relation), len(eq.rows))
    lines: list[list[Row]] = [[row] for row in eq.rows[1:formula]]     # the formula's own continuation lines
    if not pack:
        return lines + [[row] for row in eq.rows[formula:]]
    room = _room(eq)
    for k, row in enumerate(eq.rows[formula:]):
        if k and _line_width([*lines[-1], row]) <= room:
            lines[-1].append(row)
        else:
            lines.append([row])
    return lines


def _overflows(eqs: Sequence[Equation]) -> bool:
    """LaTeX: whether a row of these derivations is wider than the line on its own, beside its left-hand side.
    Packing (``_lines``) only joins rows that fit and a display cannot shrink, so such a row (a 6×6 matrix of
    nine-character numbers, times η) needs a display shrunk to the line's width, whatever the matrix's columns."""
    return any(_line_width([row]) > _room(eq) for eq in eqs for row in eq.rows)


def _room(eq: Equation) -> float:
    """The width a line of ``eq``'s rows has beside the display's left-hand sides."""
    return LINE - max(width(eq.lhs), LEFT)


def _line_width(rows: Sequence[Row]) -> float:
    indent = "" if rows[0].relation else "\\qquad "
    return joined_width([indent, *row_pieces(rows)])


def render_template(env: jinja2.Environment, name: str, **context) -> str:
    """Render one template; every template problem becomes a one-line RenderError."""
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found (searched {_searched(env)})") from None
    except jinja2.TemplateSyntaxError as exc:
        where = f"{exc.filename or exc.name or name}:{exc.lineno}"
        raise RenderError(f"template {where}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template {name} (or one it extends): {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise RenderError(f"template {name}: not allowed: {exc}") from None
    except RenderError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise RenderError(f"template {name}: {exc.__class__.__name__}: {exc}") from None


def _searched(env: jinja2.Environment) -> str:
    loader = env.loader
    paths: list[str] = []
    for sub in getattr(loader, "loaders", []):
        paths += getattr(sub, "searchpath", [])
    return ", ".join(dict.fromkeys(paths)) or "no folders"


# -- plots ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    """A line plot laid out in SVG pixels: the polyline and the axis ticks."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    polyline: str
    xticks: tuple[tuple[float, str], ...]
    yticks: tuple[tuple[float, str], ...]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = -(-low // step) * step
    ticks, t = [], first
    while t <= high + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def chart(points: Sequence[tuple[int, float]], width: int = 640, height: int = 320) -> Chart:
    """Lay out (step, loss) points as an SVG line plot with ticks; the y axis starts at 0 when it can."""
    left, top, right, bottom = 70, 20, width - 20, height - 45
    xs = [p[0] for p in points]
    ys = [float(p[1]) for p in points]      # a loss below the doubles (an mpf) is 0 at the plot's scale
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    low, high = min(ys), max(ys)
    y0 = 0.0 if low >= 0 else low
    y1 = high if high > y0 else y0 + 1.0
    yt = _ticks(y0, y1)
    y1 = max(y1, yt[-1])

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    polyline = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
    xt = [t for t in _ticks(x0, x1) if float(t).is_integer()] or [x0, x1]
    return Chart(width, height, left, top, right, bottom, polyline,
                 tuple((round(px(t), 1), f"{int(t)}") for t in xt),
                 tuple((round(py(t), 1), f"{t:.6g}") for t in yt))


@dataclass(frozen=True)
class Placed:
    """A diagram's node or edge in SVG pixels; edges carry their label's place and angle."""

    item: object
    x: float
    y: float
    x2: float = 0.0
    y2: float = 0.0
    angle: float = 0.0


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    radius: int
    nodes: tuple[Placed, ...]
    links: tuple[Placed, ...]


def drawing(diagram) -> Drawing:
    """Lay out a document's network diagram in SVG pixels (y grows downwards), as ``text.layout`` placed it."""
    where = diagram.pixels()
    nodes = tuple(Placed(n, *where[n.id]) for n in diagram.nodes)
    links = []
    for link in diagram.links:
        (x1, y1), (x2, y2) = where[link.source], where[link.target]
        angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
        links.append(Placed(link, round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1), round(angle, 2)))
    height = max(y for _, y in where.values()) + MARGIN
    return Drawing(int(2 * MARGIN + diagram.width * diagram.dx), int(height), RADIUS, nodes, tuple(links))


# -- solutions -----------------------------------------------------------------------------------

def document(solution: "Solution", precision: int | Rounding = DEFAULT_PRECISION, view: View = View()) -> "Document":

    return build(solution, check_precision(precision), view)


def render_solution(solution: "Solution", fmt: str, precision: int | Rounding = DEFAULT_PRECISION,
                    template_dir: str | Path | None = None, *, assets: str | None = None,
                    doc: "Document | None" = None, reveal: str = "open", fragment: bool = False) -> str:
    """The worked solution as Markdown (``fmt="md"``), LaTeX (``"tex"``) or one HTML page (``"html"``).

    ``assets``: a file-name stem; Markdown then links ``STEM-network.svg`` and ``STEM-loss.svg``
    (written beside it by ``write_solution``) instead of embedding Mermaid diagrams. HTML carries
    its figures inline; ``reveal="folded"`` folds every step, ``fragment`` leaves out <html> and
    <head> (for a notebook's output cell).

    >>> from derive import solve
    >>> render_solution(solve("linear-221"), "md").startswith("# A 2-2-1 linear network")
    True
    """
    if fmt not in TEMPLATES:
        raise RenderError(f"format {fmt!r}: expected one of {', '.join(TEMPLATES)}")
    if reveal not in REVEALS:
        raise RenderError(f"--reveal {reveal}: expected one of {', '.join(REVEALS)}")
    doc = doc or document(solution, precision)
    env = kept_environment(fmt, template_dir)
    figures = inline_figures(doc, template_dir) if fmt == "html" else {}
    return render_template(env, TEMPLATES[fmt], doc=doc, assets=assets, reveal=reveal, fragment=fragment,
                           figures=figures)


def inline_figures(doc: "Document", template_dir: str | Path | None) -> dict[str, str]:
    """The network diagram and the loss plot as SVG elements to put inside an HTML page."""
    files = render_figures(doc, "figure", template_dir)
    return {"network": files["figure-network.svg"], "loss": files.get("figure-loss.svg", "")}


def render_figures(doc: "Document", stem: str, template_dir: str | Path | None = None) -> dict[str, str]:
    """The SVG files a Markdown document with ``assets=stem`` links to."""
    env = kept_environment("svg", template_dir)
    files = {f"{stem}-network.svg": render_template(env, "network.svg.j2", doc=doc,
                                                    drawing=drawing(doc.setup.diagram))}
    if doc.history is not None:
        files[f"{stem}-loss.svg"] = render_template(env, "loss.svg.j2", doc=doc, history=doc.history,
                                                    chart=chart(doc.history.points))
    return files


def latex_tools() -> tuple[str, list[str]] | None:
    """The TeX command that builds a PDF here: latexmk if installed, else pdflatex; None without TeX."""
    if shutil.which("latexmk") and shutil.which("pdflatex"):
        return "latexmk", ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet"]
    if shutil.which("pdflatex"):
        return "pdflatex", ["pdflatex", "-interaction=nonstopmode", "-halt-on-error"]
    return None


def build_pdf(source: str, name: str = "solution", timeout: float = 300) -> bytes:
    """Compile LaTeX source to PDF bytes in a temporary folder; RenderError saying what to install."""
    tools = latex_tools()
    if tools is None:
        raise RenderError(f"--format pdf needs pdflatex and latexmk, which are not installed ({TEX_PACKAGES}); "
                          f"or write the LaTeX with --format tex and compile it elsewhere")
    tool, command = tools
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as tmp:
        path = Path(tmp) / f"{name}.tex"
        path.write_text(source, encoding="utf-8")
        env = {**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}
        runs = 1 if tool == "latexmk" else 2          # pdflatex twice: references settle
        try:
            for _ in range(runs):
                result = subprocess.run(command + [path.name], cwd=tmp, env=env, capture_output=True,
                                        timeout=timeout, stdin=subprocess.DEVNULL)
                if result.returncode != 0:
                    raise RenderError(f"{tool} failed on {name}.tex: {_tex_error(Path(tmp) / f'{name}.log')}")
        except subprocess.TimeoutExpired:
            raise RenderError(f"{tool} did not finish {name}.tex within {timeout:.0f} s") from None
        return (Path(tmp) / f"{name}.pdf").read_bytes()


def _tex_error(log: Path) -> str:
    """The first TeX error of a log, on one line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no log was written"
    for i, line in enumerate(lines):
        if line.startswith("!"):
            context = " ".join(l.strip() for l in lines[i + 1:i + 3] if l.strip())
            return re.sub(r"\s+", " ", f"{line[1:].strip()} {context}")[:300]
    return "see the LaTeX log"


def solution_files(solution: "Solution", fmt: str, name: str, precision: int | Rounding = DEFAULT_PRECISION,
                   template_dir: str | Path | None = None, reveal: str = "open",
                   view: View = View()) -> dict[str, str | bytes]:
    """Every file ``derive solve --format FMT --out DIR`` writes, by file name."""
    doc = document(solution, precision, view)
    if fmt == "md":
        files: dict[str, str | bytes] = {f"{name}.md": render_solution(solution, "md", template_dir=template_dir,
                                                                       assets=name, doc=doc)}
        files.update(render_figures(doc, name, template_dir))
        return files
    if fmt == "html":
        return {f"{name}.html": render_solution(solution, "html", template_dir=template_dir, doc=doc, reveal=reveal)}
    tex = render_solution(solution, "tex", template_dir=template_dir, doc=doc)
    if fmt == "tex":
        return {f"{name}.tex": tex}
    if fmt == "pdf":
        return {f"{name}.pdf": build_pdf(tex, name)}
    raise RenderError(f"format {fmt!r}: expected md, tex, html or pdf")


def write_solution(solution: "Solution", fmt: str, out: str | Path | None, name: str,
                   precision: int | Rounding = DEFAULT_PRECISION, template_dir: str | Path | None = None,
                   reveal: str = "open", view: View = View()) -> list[Path]:
    """What ``derive solve`` does for md, tex and pdf: print, or write every file or none of them.

    Without ``out``, Markdown and LaTeX go to standard output (Markdown then draws its figures
    with Mermaid); a PDF needs ``out``. With ``out``, the files are made in a temporary folder
    first and only then moved into place.
    """
    if out is None:
        if fmt == "pdf":
            raise RenderError("--format pdf needs --out DIR (a PDF is not written to the terminal)")
        sys.stdout.write(render_solution(solution, fmt, precision, template_dir, reveal=reveal,
                                         doc=document(solution, precision, view)))
        return []
    written = write_files(solution_files(solution, fmt, name, precision, template_dir, reveal, view), out)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return written
