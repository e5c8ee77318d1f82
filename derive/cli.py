"""The command line: parse options, call the library, turn user errors into one line and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .api import solve
from .check import register as register_check
from .errors import DeriveError
from .exam import register as register_exam
from .latex import check_precision
from .spec import example_names, load


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write the whole file or nothing: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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


# -- commands -----------------------------------------------------------------------------

def cmd_examples(args: argparse.Namespace) -> int:
    for name in example_names():
        spec = load(name)
        print(f"{name}\t{spec.title}")
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    carry = check_precision(args.precision) if args.rounding == "carried" else None
    solution = solve(args.spec, carry=carry)
    if args.format == "json":
        text = json.dumps(solution.json(), indent=2) + "\n"
        emit(text, args.out, f"{stem(args.spec)}.json")
        return 0
    from .render import write_solution   # documents: Markdown, LaTeX, PDF

    write_solution(solution, args.format, args.out, stem(args.spec), precision=args.precision,
                   template_dir=args.template_dir)
    return 0


FORMATS = ("md", "tex", "json", "pdf")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="derive", description="Derive backpropagation by computer algebra and "
                                                          "write it up as worked solutions.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ex = sub.add_parser("examples", help="list the built-in examples, one per line, name first")
    ex.set_defaults(run=cmd_examples)

    so = sub.add_parser("solve", help="the worked solution of a spec")
    so.add_argument("spec", metavar="SPEC", help="a TOML file or a built-in example's name")
    so.add_argument("--format", choices=FORMATS, default="md")
    so.add_argument("--out", metavar="DIR", help="write DIR/NAME.FORMAT instead of printing")
    so.add_argument("--precision", type=int, default=6, metavar="N",
                    help="significant digits of the numbers shown (default 6)")
    so.add_argument("--rounding", choices=("display", "carried"), default="display",
                    help="display (default): compute exactly, round only what is shown; carried: round every "
                         "value to N digits as it is computed and go on with the rounded value, as by hand")
    so.add_argument("--template-dir", metavar="DIR", help="templates that override the built-in ones")
    so.set_defaults(run=cmd_solve)

    for register in COMMANDS:
        register(sub)
    return p


# The later stages' sub-commands, in the order `derive --help` lists them.
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_check, register_exam]


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
