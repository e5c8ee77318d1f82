"""The documents of an exam: per variant its sheet and key, all sheets, Moodle XML, answers.json, and writing them."""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable, Sequence

import sympy as sp
from sympy import Symbol

from derive.derived.solution import Solution
from derive.errors import ExamError
from derive.exam.model import Exam
from derive.exam import blackboard, qti
from derive.exam.moodle import cloze, html_text, math_html
from derive.exam.questions import Math, Question, Variant, parameter_pool
from derive.exam.roster import Student
from derive.exam.variants import build_spec, toml_text
from derive.io import write_files
from derive.model.plain import plain as plain_formula
from derive.model.registry import activation, takes_slope
from derive.model.spec import Spec
from derive.numeric.rounding import number
from derive.parallel import default_jobs, parallel_map
from derive.text.escape import escape_latex, markdown_chars, spreadsheet_cell
from derive.text.printer import tex
from derive.text.render import TEMPLATES, build_pdf, document, inline_figures, render_template
from derive.text.render import environment as shared

# -- documents: the data every sheet and key shows ------------------------------------------------

@dataclass(frozen=True)
class Line:
    """One row of the network's equations: a unit's net input and its activation."""

    z: str
    z_rhs: str
    a: str
    a_rhs: str
    plain: str = ""              # both as plain text (Blackboard): z_h1 = w1*x1 + w2*x2 + b1, h1 = sigmoid(z_h1)


@dataclass(frozen=True)
class Parameter:
    latex: str
    plain: str
    edge: Math                   # where it sits: x_1 → h_1, or the unit(s) it shifts
    value: str                   # LaTeX of the initial value
    value_plain: str = ""


@dataclass(frozen=True)
class PlainText:
    """What a sheet writes in LaTeX, as plain text in the claim syntax a student types (Blackboard shows no math)."""

    functions: tuple[str, ...]   # sigmoid(z) = 1/(1 + exp(-z))
    loss: str                    # E = ½·Σ(y - o)², the sum over …
    data: tuple[tuple[str, ...], ...]
    header: tuple[str, ...]


@dataclass(frozen=True)
class Sheet:
    """Everything one variant's question sheet and answer key show; user text unescaped (templates escape it)."""

    title: str
    intro: str
    number: int
    count: int
    seed: int
    exam_seed: int
    command: str
    decimals: int
    tolerance: str
    setup: tuple[str | Math, ...]
    training: tuple[str | Math, ...]
    functions: tuple[str, ...]
    lines: tuple[Line, ...]
    loss: str
    data_header: tuple[str, ...]
    data: tuple[tuple[str, ...], ...]
    parameters: tuple[Parameter, ...]
    questions: tuple[Question, ...]
    spec_file: str               # the variant's spec beside the sheet: variant-07.toml
    solution: str | None = None  # the full worked solution (keys only); in LaTeX its document body
    preamble: str | None = None  # LaTeX keys: the worked solution's preamble, which the key adopts
    student: Student | None = None   # --roster: whose sheet it is (user text)
    show_points: bool = False        # [exam].points given: each question says what it is worth
    plain: PlainText | None = None   # the formulas as plain text, for an LMS that shows no math (Blackboard)

    @property
    def total_points(self) -> int:
        return sum(q.points for q in self.questions)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def setup_text(sol: Solution) -> tuple[str | Math, ...]:
    """The network in words, with its learning rate; the equations below make it exact."""
    spec = sol.spec
    hidden = [f"{spec.layers[l + 1]} {spec.activations[l].replace('_', ' ')}" for l in range(spec.depth - 1)]
    layers = (f"a hidden layer of {hidden[0]} units" if len(hidden) == 1 else
              "hidden layers of " + ", ".join(hidden) + " units" if hidden else "no hidden layer")
    out_act = spec.activations[-1].replace("_", " ")
    outputs = f"{_count(spec.layers[-1], out_act + ' output unit')}"
    bias = _bias_words(spec)
    segments: list[str | Math] = [f"The network has {_count(spec.layers[0], 'input')}, {layers} and {outputs}. "
                                  f"{bias} It computes, for each sample,"]
    return tuple(segments)


def _bias_words(spec: Spec) -> str:
    kind = spec.bias.uniform
    if kind is not None:
        return {"none": "It has no biases.", "neuron": "Every unit has its own bias.",
                "shared": "Each layer has one bias shared by all its units."}[kind]
    words = {"none": "no biases", "neuron": "a bias per unit", "shared": "one bias shared by its units"}
    return " ".join(f"Layer {l + 1} has {words[k]}." for l, k in enumerate(spec.bias.kinds))


def training_text(sol: Solution) -> tuple[str | Math, ...]:
    """The learning rate, and which parameters gradient descent leaves alone."""
    rates = sol.spec.optimizer.rates
    if not sol.spec.optimizer.per_layer:
        rate = number(sol.spec.learning_rate)
        out: list[str | Math] = ["It is trained by gradient descent with learning rate ",
                                 Math(rf"\eta = {rate.tex}", f"eta = {rate.plain}")]
    else:       # a rate per layer: of its weights and of its biases
        eta = sol.network.notation.rate
        tex = r",\ ".join(f"{eta(g).latex} = {number(rates[g]).tex}" for g in sol.spec.groups)
        plain = ", ".join(f"{eta(g).plain} = {number(rates[g]).plain}" for g in sol.spec.groups)
        out = ["It is trained by gradient descent with a learning rate per layer, ", Math(tex, plain)]
    optimizer = sol.spec.optimizer
    if optimizer.weight_decay:
        lam = number(optimizer.weight_decay)
        out += [" and weight decay ", Math(rf"\lambda = {lam.tex}", f"lambda = {lam.plain}"), " on the weights"
                + (" and biases" if optimizer.decay_biases else ""), ": an update is ",
                Math(r"w \leftarrow w - \eta \left(\partial E / \partial w + \lambda w\right)",
                     "w <- w - eta*(dE/dw + lambda*w)")]
    fixed_ = [p for p in sol.network.parameters if p not in _trainable(sol)]
    if fixed_:
        names = [sol.network.names[p] for p in fixed_]
        out += ["; ", Math(", ".join(n.latex for n in names), ", ".join(n.plain for n in names)),
                " stay fixed" if len(names) > 1 else " stays fixed"]
    out.append(".")
    if optimizer.stochastic:
        out.append(_batches_text(sol))
    return tuple(out)


def _batches_text(sol: Solution) -> str:
    """Online or in mini-batches: which samples the first update (the one asked about) takes, and its loss."""
    optimizer, rule = sol.spec.optimizer, sol.spec.rule
    first = next(optimizer.order())
    rows = ", ".join(str(n + 1) for n in first)
    kind = "online, one sample per update" if optimizer.batch == 1 else f"in mini-batches of {optimizer.batch} samples"
    own = "that sample's" if len(first) == 1 else "those samples'"
    text = (f" It is trained {kind}: every question is about the first update, which takes sample"
            f"{'s' if len(first) > 1 else ''} {rows} of the data alone; E above is {own} loss"
            + (f" (N = {len(first)})" if rule.averages else "") + ", whose gradient the update follows")
    if len(first) > 1 and first != tuple(range(len(first))):
        text += f"; sample n of the questions is the n-th of {rows}"
    return text + "."


def _trainable(sol: Solution) -> set[Symbol]:
    return set(parameter_pool(sol, None, trainable=True))


def _definitions(spec: Spec, plain: bool = False) -> tuple[str, ...]:
    """f(z) = … of every activation the network uses (the ones with the spec's slope last), each once."""
    acts = [activation(name, spec.slope) for name in dict.fromkeys(spec.activations)]
    slope = number(spec.slope)
    ordered = [a for a in acts if not takes_slope(a.name)] + [a for a in acts if takes_slope(a.name)]
    if plain:
        return tuple(a.plain_definition(slope.plain) for a in ordered if a.plain_definition is not None)
    return tuple(a.definition(slope.tex) for a in ordered if a.definition is not None)


def loss_plain(spec: Spec) -> str:
    """The loss as plain text, with what its sum runs over."""
    N, J = spec.samples, spec.layers[-1]
    over = [f"the {N} samples" if N > 1 else "", f"the {J} outputs" if J > 1 else ""]
    words = " and ".join(w for w in over if w)
    return f"E = {spec.rule.plain_formula}" + (f", the sum over {words}" if words else "") + (
        f" (N = {N}, J = {J})" if "N" in spec.rule.plain_scale or "J" in spec.rule.plain_scale else "")


def plain_text(sol: Solution) -> PlainText:
    net, spec = sol.network, sol.spec
    header = tuple(net.names[s].plain for s in net.inputs + net.targets)
    data = tuple(tuple(number(v).plain for v in x + y) for x, y in zip(spec.x, spec.y))
    return PlainText(_definitions(spec, plain=True), loss_plain(sol.first_update.spec), data, header)


def loss_latex(spec: Spec) -> str:
    """The loss of this network over its batch, with the constant in front written out."""
    rule = spec.rule
    N, J = spec.samples, spec.layers[-1]
    scale = rule.scale(N, J)
    term = rule.term_latex
    sums = ""
    if N > 1:
        sums += rf"\sum_{{n=1}}^{{{N}}} "
    else:
        term = term.replace("_{nj}", "_{j}")
    if J > 1:
        sums += rf"\sum_{{j=1}}^{{{J}}} "
    else:
        term = term.replace("_{nj}", "_{n}").replace("_{j}", "")
    front = {1: "", -1: "-"}.get(scale, sp.latex(scale) + " ")
    return f"E = {front}{sums}{term}"


def sheet(exam: Exam, variant: Variant, sol: Solution, solution_text: str | None = None) -> Sheet:
    """The sheet of one variant, built from its solved spec."""
    spec, net, cfg = sol.spec, sol.network, exam.cfg
    names = {s: n.latex for s, n in net.names.items()}
    plains = {s: n.plain for s, n in net.names.items()}
    lines = []
    for l in range(spec.depth):
        for j, (z, a) in enumerate(zip(net.nets[l], net.activations[l])):
            text = (f"{plains[z]} = {plain_formula(net.definitions[z], plains)}, "
                    f"{plains[a]} = {plain_formula(net.definitions[a], plains)}")
            lines.append(Line(names[z], tex(net.definitions[z], names), names[a], tex(net.definitions[a], names),
                              text))
    functions = _definitions(spec)
    header = tuple(names[s] for s in net.inputs + net.targets)
    data = tuple(tuple(number(v).tex for v in x + y) for x, y in zip(spec.x, spec.y))
    values = sol.training.first.parameters
    parameters = tuple(Parameter(names[p], net.names[p].plain, _edge(sol, p), number(values[p]).tex,
                                 number(values[p]).plain) for p in net.parameters)
    floor = format(Decimal(5).scaleb(-cfg.decimals - 1), "f")
    # the key gives each update its own, tighter tolerance; the sheet says how tight
    update = "for an updated parameter at most a quarter of its change" if any(
        q.kind == "update" for q in variant.questions) else ""
    tol = (f"{float(cfg.tolerance) * 100:g}% of the right value (at least {floor}{'; ' + update if update else ''})"
           if cfg.relative else format(Decimal(str(cfg.tolerance_for(1.0))), "f") + (f" ({update})" if update else ""))
    return Sheet(cfg.title, cfg.intro, variant.number, exam.count, variant.seed, exam.seed,
                 exam.command(variant.number), cfg.decimals, tol, setup_text(sol), training_text(sol), functions, tuple(lines),
                 loss_latex(sol.first_update.spec), header, data, parameters, variant.questions,
                 f"variant-{_stem(exam, variant.number)}.toml", solution_text,
                 show_points=isinstance(cfg.points, tuple) or cfg.points != 1, plain=plain_text(sol))


def _edge(sol: Solution, p: Symbol) -> Math:
    """Where a parameter sits: ``x_1 → h_1`` for a weight, the unit(s) it shifts for a bias."""
    net = sol.network
    n = net.names
    for l, layer in enumerate(net.weights):
        for j, row in enumerate(layer):
            if p in row:
                k = row.index(p)
                src, dst = n[net.layer_input(l)[k]], n[net.activations[l][j]]
                return Math(rf"{src.latex} \to {dst.latex}", f"{src.plain} -> {dst.plain}")
    units = [net.activations[l][j] for l, layer in enumerate(net.biases) for j, b in enumerate(layer) if b == p]
    if len(units) > 2:                # a shared bias: name the layer, not every unit
        at = next(l for l, layer in enumerate(net.biases) if p in layer) + 1
        return Math(rf"\to \text{{layer {at}}}", f"-> layer {at}")
    return Math(r"\to " + ", ".join(n[u].latex for u in units), "-> " + ", ".join(n[u].plain for u in units))


# -- rendering ---------------------------------------------------------------------------------------

def _is_math(value: Any) -> bool:
    return isinstance(value, Math)


def _spaced(escape: Callable[[str], str]) -> Callable[[str], str]:
    """An escaping filter that keeps the text's outer spaces (prompts run into formulas)."""

    def run(text: str) -> str:
        core = text.strip()
        if not core:
            return " " if text else ""
        return (" " if text[0].isspace() else "") + escape(core) + (" " if text[-1].isspace() else "")

    return run


def _words(fmt: str) -> Callable[[str], str]:
    """Our own sentences between formulas: escaped for the format, spaces kept, no line-start rules."""
    if fmt == "tex":
        return _spaced(escape_latex)
    if fmt == "md":
        return markdown_chars
    return html_text


@lru_cache(maxsize=None)
def environment(fmt: str, template_dir: str | None = None):
    """render.py's Jinja environment for ``fmt`` (tex, md, xml) with the exam's filters and the ``math`` test.

    Kept for the whole run: Jinja compiles each template once per environment, and an exam
    renders the same templates for every variant.
    """
    env = shared(fmt, template_dir)
    env.tests["math"] = _is_math
    env.filters.update(tex=_spaced(escape_latex), words=_words(fmt), html=html_text, mathhtml=math_html,
                       cloze=cloze)
    return env


def render(fmt: str, name: str, template_dir: str | None = None, **context: Any) -> str:
    """One exam template rendered; a broken or missing template is a one-line RenderError."""
    return render_template(environment(fmt, template_dir), name, **context)


# -- files -------------------------------------------------------------------------------------------

FORMATS = ("tex", "md", "html", "moodle", "qti12", "qti21", "blackboard", "pdf")
DEFAULT_FORMATS = ("tex", "md", "moodle")


@dataclass(frozen=True)
class Options:
    """How the files are written: formats, the worked solutions' precision, the user's templates."""

    formats: tuple[str, ...] = DEFAULT_FORMATS
    precision: int = 6
    template_dir: str | None = None
    roster: tuple[Student, ...] = ()        # --roster: a named sheet per student


def _stem(exam: Exam, number: int) -> str:
    return str(number).rjust(max(2, len(str(exam.count))), "0")


@lru_cache(maxsize=None)
def _solution_environment(fmt: str, template_dir: str | None):
    return shared(fmt, template_dir)


def worked_solutions(sol: Solution, formats: Sequence[str], opts: Options) -> dict[str, str]:
    """The full worked solution in each format: what render_solution writes, from one document model
    and one (cached) environment per format."""
    doc = document(sol, opts.precision)
    # an HTML key carries the solution as a piece of its page, every step folded
    return {fmt: render_template(_solution_environment(fmt, opts.template_dir), TEMPLATES[fmt], doc=doc, assets=None,
                                 reveal="folded", fragment=True,
                                 figures=inline_figures(doc, opts.template_dir) if fmt == "html" else {})
            for fmt in formats}


def variant_files(exam: Exam, variant: Variant, opts: Options) -> tuple[Sheet, dict[str, str]]:
    """One variant's own files: its spec as TOML, its question sheet and its answer key."""
    stem = _stem(exam, variant.number)
    sol = Solution(build_spec(variant.raw, f"variant-{stem}.toml"))
    files = {f"variant-{stem}.toml": toml_text(variant.raw)}
    base = sheet(exam, variant, sol)
    formats = [fmt for fmt in ("tex", "md", "html") if fmt in opts.formats or (fmt == "tex" and "pdf" in opts.formats)]
    solutions = worked_solutions(sol, formats, opts) if formats else {}
    for fmt in formats:
        files[f"sheet-{stem}.{fmt}"] = render(fmt, f"exam.sheet.{fmt}.j2", opts.template_dir, sheets=[base])
        keyed = _with_solution(base, solutions[fmt], fmt)
        files[f"key-{stem}.{fmt}"] = render(fmt, f"exam.key.{fmt}.j2", opts.template_dir, sheet=keyed)
    return base, files


def _with_solution(base: Sheet, text: str, fmt: str) -> Sheet:
    """The key's sheet: with the worked solution, a LaTeX one split into its preamble and its body."""
    if fmt != "tex":
        return replace(base, solution=text)
    preamble, begin, rest = text.partition("\\begin{document}")
    body, end, _ = rest.rpartition("\\end{document}")
    if not begin or not end:
        raise ExamError("the worked solution's LaTeX has no \\begin{document} … \\end{document}: "
                        "check --template-dir's solution.tex.j2")
    return replace(base, solution=body.strip("\n") + "\n", preamble=preamble.rstrip("\n") + "\n")


_STATE: dict[str, Any] = {}


def _render_one(variant: Variant) -> tuple[Sheet, dict[str, str]]:
    return variant_files(_STATE["exam"], variant, _STATE["options"])


def _init_render(exam: Exam, opts: Options) -> None:
    _STATE.update(exam=exam, options=opts)


def json_text(value: Any, indent: str = "") -> str:
    """JSON with two-space indentation, but lists of numbers and strings on one line (matrices stay readable)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {json_text(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        if all(isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v) for v in value):
            return "[" + ", ".join(json_text(v) for v in value) + "]"      # a matrix on one line
        return "[\n" + ",\n".join(inner + json_text(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def documents(exam: Exam, opts: Options = Options(), jobs: int | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> dict[str, str | bytes]:
    """Every file of the exam by name: answers.json, per variant its spec, sheet and key, sheets, Moodle XML,
    the QTI 1.2 package."""
    files: dict[str, str | bytes] = {"answers.json": json_text(exam.json()) + "\n"}
    jobs = default_jobs() if jobs is None else jobs
    report = (lambda done, total: progress("writing", done, total)) if progress else None
    sheets = []
    for base, own in parallel_map(_render_one, list(exam.variants), jobs, _init_render, (exam, opts), report):
        sheets.append(base)
        files.update(own)
    printed = named_sheets(sheets, opts) or sheets     # with a roster, every student's sheet in its order
    files.update(student_files(printed if opts.roster else [], opts))
    if "tex" in opts.formats or "pdf" in opts.formats:
        files["sheets.tex"] = render("tex", "exam.sheet.tex.j2", opts.template_dir, sheets=printed)
    if "html" in opts.formats:          # every sheet in one page, one printed page each
        files["sheets.html"] = render("html", "exam.sheet.html.j2", opts.template_dir, sheets=printed)
    if opts.roster:
        files["roster.csv"] = roster_csv(opts.roster)
    if "moodle" in opts.formats:
        files["moodle.xml"] = moodle_xml(exam, sheets, opts)
    if "qti12" in opts.formats:
        files["qti12.zip"] = qti12_zip(exam, sheets, opts)
    if "qti21" in opts.formats:
        files["qti21.zip"] = qti21_zip(exam, sheets, opts)
    if "blackboard" in opts.formats:
        files["blackboard.zip"] = blackboard_zip(exam, sheets, opts)
    return dict(sorted(files.items()))


def qti21_zip(exam: Exam, sheets: Sequence[Sheet], opts: Options) -> bytes:
    """The QTI 2.1 package: the test (a section per question selecting one variant's item) and every item, each
    with its network in XHTML and MathML and the typical mistakes' feedback."""
    ident = qti.assessment_ident(exam.seed)
    groups = qti.sections([s.questions for s in sheets], ident)
    files = {"imsmanifest.xml": render("xml", "exam.qti21.manifest.xml.j2", opts.template_dir, ident=ident,
                                       groups=groups),
             f"{ident}.xml": render("html", "exam.qti21.test.xml.j2", opts.template_dir, ident=ident,
                                    title=exam.cfg.title, groups=groups)}
    for g in groups:
        for task in g.items:
            files[f"items/{task.ident}.xml"] = render("html", "exam.qti21.item.xml.j2", opts.template_dir, task=task,
                                                      sheet=sheets[task.variant - 1], points=g.points,
                                                      title=f"{g.title}, variant {task.variant}")
    return qti.zipped(files)


def named_sheets(sheets: Sequence[Sheet], opts: Options) -> list[Sheet]:
    """Each student's sheet, the variant's with the student's name and id, in the roster's order (--only: the
    students of the variants written)."""
    by_number = {s.number: s for s in sheets}
    return [replace(by_number[s.variant], student=s) for s in opts.roster if s.variant in by_number]


def student_files(named: Sequence[Sheet], opts: Options) -> dict[str, str | bytes]:
    """student-ID.tex/md/html: one named sheet per student."""
    formats = [f for f in ("tex", "md", "html") if f in opts.formats or (f == "tex" and "pdf" in opts.formats)]
    return {f"student-{s.student.id}.{fmt}": render(fmt, f"exam.sheet.{fmt}.j2", opts.template_dir, sheets=[s])
            for s in named if s.student is not None for fmt in formats}


def roster_csv(students: Sequence[Student]) -> str:
    """Which variant each student got, to merge with the marks: name, id, variant, and the sheet's file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "id", "variant"])
    writer.writerows([spreadsheet_cell(s.name), spreadsheet_cell(s.id), s.variant] for s in students)
    return out.getvalue()


def qti12_zip(exam: Exam, sheets: Sequence[Sheet], opts: Options) -> bytes:
    """The QTI 1.2 package for Canvas: a question group per question, each drawing one variant's item."""
    ident = qti.assessment_ident(exam.seed)
    groups = qti.groups([s.questions for s in sheets], ident)
    context = dict(ident=ident, title=exam.cfg.title, groups=groups, sheets=sheets,
                   description=f"{len(sheets)} variant(s) of {exam.name}, exam seed {exam.seed}, made by derive exam.",
                   points=sum(g.points for g in groups))
    return qti.package(ident, {part: render("xml", f"exam.qti12.{part}.xml.j2", opts.template_dir, **context)
                               for part in ("manifest", "meta")}
                       | {"assessment": render("xml", "exam.qti12.xml.j2", opts.template_dir, **context)})


def blackboard_zip(exam: Exam, sheets: Sequence[Sheet], opts: Options) -> bytes:
    """Blackboard's upload files, one per question with a row per variant, and how to upload them."""
    files = {}
    for i, question in enumerate(sheets[0].questions):
        rows = [blackboard.row(f"v{s.number}_q{i + 1}", s.questions[i],
                               render("xml", "exam.blackboard.html.j2", opts.template_dir, sheet=s, q=s.questions[i]))
                for s in sheets]
        files[f"question-{i + 1:02d}.txt"] = "".join(f"{r}\n" for r in rows)
    points = [q.points for q in sheets[0].questions]
    files["how-to-upload.txt"] = render("xml", "exam.blackboard.txt.j2", opts.template_dir, exam=exam,
                                        names=list(files), points=points)
    return qti.zipped(files)


def moodle_xml(exam: Exam, sheets: Sequence[Sheet], opts: Options) -> str:
    """The Moodle XML file: a category for the exam, one Cloze question per variant."""
    title = exam.cfg.title.replace("/", "-")           # a slash would open a sub-category
    return render("xml", "exam.moodle.xml.j2", opts.template_dir,
        sheets=sheets, category=f"$course$/top/derive exam/{title}",
        info=f"{len(sheets)} variant(s) of {exam.name}, exam seed {exam.seed}, made by derive exam.",
        idprefix=f"derive-{exam.seed}")


VARIANT_FILE = re.compile(r"(variant|sheet|key)-\d+\.(toml|md|tex|html|pdf)")
STUDENT_FILE = re.compile(r"student-[A-Za-z0-9._-]+\.(md|tex|html|pdf)")
EXAM_FILE = re.compile(rf"{VARIANT_FILE.pattern}|{STUDENT_FILE.pattern}|sheets\.(tex|pdf|html)|answers\.json|moodle\.xml|"
                       rf"qti12\.zip|qti21\.zip|blackboard\.zip|roster\.csv")


def write(files: dict[str, str | bytes], out: str, replace: bool = True) -> None:
    """Write every file into DIR at once; with ``replace``, the files of an earlier exam in DIR that this
    one does not write (key-37.md after a run of 30 variants) are removed, so DIR holds one exam."""
    write_files(files, out, stale=EXAM_FILE if replace else None)


def pdfs(files: dict[str, str | bytes], jobs: int | None = None) -> dict[str, bytes]:
    """The PDF of every LaTeX file (sheets.tex, each sheet and key), with render.py's TeX runner, TeX runs in parallel."""
    sources = {name: text for name, text in files.items() if name.endswith(".tex") and isinstance(text, str)}
    with ThreadPoolExecutor(max_workers=jobs or default_jobs()) as pool:     # each run is a pdflatex process
        built = list(pool.map(lambda name: build_pdf(sources[name], name[:-4]), sources))
    return {name[:-4] + ".pdf": pdf for name, pdf in zip(sources, built)}
