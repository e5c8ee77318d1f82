"""The command line: every option of every command, a dispatch that loads only the chosen stage, one-line errors."""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

from derive.errors import DeriveError
from derive.io import write_atomically
from derive.version import __version__

SOLVE_FORMATS = ("md", "tex", "html", "json", "pdf")
EXAM_FORMATS = ("tex", "md", "html", "moodle", "qti12", "qti21", "blackboard", "pdf")          # derive.exam.sheets.FORMATS (a test keeps them equal)
EXAM_DEFAULT_FORMATS = ("tex", "md", "moodle")
CHECK_FORMATS = ("text", "json", "md", "csv")


def stem(spec: str) -> str:
    """The output file name of a spec: the file's stem, or the example's name."""
    return Path(spec).stem if spec.endswith(".toml") else Path(spec).name


def emit(text: str, out: str | None, name: str) -> None:
    """Print to standard output, or write DIR/NAME atomically and say where."""
    if out is None:
        sys.stdout.write(text)
    else:
        path = Path(out) / name
        write_atomically(path, text)
        print(f"wrote {path}", file=sys.stderr)


# -- commands: each loads the stages it uses --------------------------------------------------

def load_stage(name: str) -> ModuleType:
    """The one place the CLI imports derive's stages, and only the chosen command's: `derive examples` loads
    no SymPy, `derive solve --format json` no Jinja2, checker or exam."""
    # Loading SymPy makes about 100,000 objects that live as long as the process, and the cyclic garbage collector
    # walked them again and again while they were made, and once more at exit. It pauses while a stage loads, and
    # what loading made is frozen out of its later passes and its last (they look at the work's objects only): a
    # third of the CPU time of `python -c "import sympy"` (python -m tests.benchmark --only start).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(name)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def cmd_examples(args: argparse.Namespace) -> int:
    examples = load_stage("derive.model.examples")
    for name in examples.example_names():
        print(f"{name}\t{examples.example_title(name)}")
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    rounding = load_stage("derive.numeric.rounding")
    shown = rounding.Rounding(args.decimals, decimals=True) if args.decimals is not None else \
        rounding.Rounding(args.precision)
    rounding.check_precision(shown)         # before any work: --decimals 40 is refused in a line
    solution = load_stage("derive.derived.solution").solve(args.spec, carry=shown if args.rounding == "carried" else None)
    if args.format == "json":
        emit(json.dumps(solution.json(), indent=2) + "\n", args.out, f"{stem(args.spec)}.json")
        return 0
    render = load_stage("derive.text.render")
    sections, focus = tuple(_listed(args.sections)), tuple(_listed(args.focus))
    view = render.View(sections, focus, args.detail) if sections else render.View(focus=focus, detail=args.detail)
    render.write_solution(solution, args.format, args.out, stem(args.spec), precision=shown,
                          template_dir=args.template_dir, reveal=args.reveal, view=view)
    return 0


def _listed(text: str | None) -> list[str]:
    """A comma-separated option's items, blanks dropped."""
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def cmd_check(args: argparse.Namespace) -> int:
    if args.derivation and (args.claim or args.claims or args.explain):
        args.parser.error("--derivation FILE grades whole derivations: give it without --claim, --claims and --explain")
    if not args.claim and not args.claims and not args.derivation:
        args.parser.error("give at least one --claim \"LHS = RHS\", --claims FILE or --derivation FILE")
    check = load_stage("derive.check")
    if args.derivation:
        graded = check.grade_derivations(args.spec, args.derivation, args.format)
    else:
        graded = check.grade(args.spec, args.claim or (), args.claims or (), args.format, args.explain,
                             args.keep_going)
    sys.stdout.write(graded.report)
    return 0 if graded.all_hold else 3


def cmd_exam(args: argparse.Namespace) -> int:
    exam = load_stage("derive.exam.command")
    opts = exam.Options(args.format, args.precision, args.template_dir)
    print(exam.run(args.spec, args.variants, args.seed, args.out, opts, only=args.only, jobs=args.jobs,
                   roster=args.roster), file=sys.stderr)
    return 0


# -- options ---------------------------------------------------------------------------------

def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in chosen if f not in EXAM_FORMATS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(EXAM_FORMATS)}; got {text!r}")
    return chosen


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number; got {text!r}")
    return value


def _add_solve(sub: argparse._SubParsersAction) -> None:
    so = sub.add_parser("solve", help="the worked solution of a spec")
    so.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name")
    so.add_argument("--format", choices=SOLVE_FORMATS, default="md")
    so.add_argument("--out", metavar="DIR", help="write DIR/NAME.FORMAT instead of printing")
    digits = so.add_mutually_exclusive_group()
    digits.add_argument("--precision", type=int, default=6, metavar="N",
                        help="significant digits of the numbers shown (default 6)")
    digits.add_argument("--decimals", type=int, metavar="N",
                        help="decimal places of the numbers shown instead (0.12, as many tutorials and exams round)")
    so.add_argument("--rounding", choices=("display", "carried"), default="display",
                    help="display (default): compute exactly, round only what is shown; carried: round every "
                         "value to N digits (or places) as it is computed and go on with the rounded value, as by hand")
    so.add_argument("--reveal", choices=("open", "folded"), default="open",
                    help="html: every step open (default), or folded for a student to try each one first")
    so.add_argument("--sections", metavar="LIST",
                    help="comma-separated, the sections to show, numbered in order (setup, notation, forward, loss, "
                         "backward, general, update, after, history, verification; default all)")
    so.add_argument("--focus", metavar="LIST",
                    help="comma-separated parameters (w1,b2): the backward pass and the update follow only them "
                         "and what their gradients need")
    so.add_argument("--detail", choices=("short", "full"), default="short",
                    help="short (default): each delta once, one parameter per layer by its whole chain, the rest one "
                         "line from their delta; full: every chain in full, the layer-wise recursion, the forward "
                         "pass again with the new parameters")
    so.add_argument("--template-dir", metavar="DIR", help="templates that override the built-in ones")
    so.set_defaults(run=cmd_solve)


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="check claimed derivatives and numbers against the true ones",
        description="Check claims 'LHS = RHS' about a spec's derivation: exit 0 when all hold, 3 when one "
                    "does not, 1 when a claim cannot be read.")
    p.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name")
    p.add_argument("--claim", action="append", metavar='"LHS = RHS"',
                   help="a claim such as \"dE/dw5 = 0.17\" or \"dE/dw5 = (o - y)*h1\" (repeatable)")
    p.add_argument("--claims", action="extend", nargs="+", metavar="FILE",
                   help="TOML answer sheets: claims = [\"…\"] or [[claim]] text = \"…\" (one file per student; "
                        "several files grade a class in one run)")
    p.add_argument("--derivation", action="extend", nargs="+", metavar="FILE",
                   help="a whole derivation, one claim per line (Markdown or plain lines, a LaTeX align block, or "
                        "TOML with derivation = \"\"\"…\"\"\"): each line judged against the truth and against "
                        "the student's own earlier lines (error carried forward)")
    p.add_argument("--format", choices=CHECK_FORMATS, default="text")
    p.add_argument("--explain", action="store_true", help="print the correct derivation of each claimed quantity")
    p.add_argument("--keep-going", action="store_true",
                   help="an unreadable claim does not hold (its diagnosis says why) instead of stopping the run")
    p.set_defaults(run=cmd_check, parser=p)


def _add_exam(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exam", help="randomized exam variants with answer keys (LaTeX, Markdown, Moodle XML, answers.json)",
        description="Write N verified variants of the exercise SPEC into DIR: per variant its spec (variant-K.toml), "
                    "question sheet and answer key with the worked solution; all sheets in sheets.tex; every variant "
                    "as a Moodle Cloze question in moodle.xml; every answer in answers.json. What varies and which "
                    "questions are asked comes from the spec's [exam] table.")
    p.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name: the template")
    p.add_argument("--variants", type=_positive, metavar="N",
                   help="how many variants (default 1; with --roster, one per student)")
    p.add_argument("--roster", metavar="FILE.csv",
                   help="a class list with the columns name and id: a named sheet per student (student-ID.*, all in "
                        "sheets.tex), student k getting variant k (round robin over --variants), listed in roster.csv")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="the exam's seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (made if missing)")
    p.add_argument("--format", type=_formats, default=EXAM_DEFAULT_FORMATS, metavar="LIST",
                   help=f"comma-separated, of {', '.join(EXAM_FORMATS)} (default {','.join(EXAM_DEFAULT_FORMATS)}); "
                        f"answers.json and the variants' specs are always written")
    p.add_argument("--only", type=_positive, metavar="K",
                   help="write only variant K, exactly as the full run of the same arguments makes it")
    p.add_argument("--jobs", type=_positive, metavar="J", help="processes to use (default: every core)")
    p.add_argument("--precision", type=_positive, default=6, metavar="P",
                   help="significant digits in the keys' worked solutions (default 6)")
    p.add_argument("--template-dir", metavar="DIR", help="templates that override the built-in ones")
    p.set_defaults(run=cmd_exam)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="derive", description="Derive backpropagation by computer algebra and "
                                                          "write it up as worked solutions.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ex = sub.add_parser("examples", help="list the built-in examples, one per line, name first")
    ex.set_defaults(run=cmd_examples)
    for add in COMMANDS:
        add(sub)
    return p


# The commands after `examples`, in the order `derive --help` lists them.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_solve, _add_check, _add_exam]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except DeriveError as exc:
        print(f"derive: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:           # an --out folder that cannot be made or written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"derive: error: {where}cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 1
