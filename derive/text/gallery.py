"""The gallery: every built-in example rendered into output/, as `derive solve NAME` prints it (`python -m derive.text.gallery`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from derive.derived.solution import solve
from derive.errors import RenderError
from derive.io import write_atomically
from derive.model.spec import example_names
from derive.text.render import (
    TEX_PACKAGES,
    build_pdf,
    document,
    latex_tools,
    render_solution,
)

GALLERY = Path(__file__).resolve().parents[2] / "output"


def gallery(folder: Path = GALLERY, names: Sequence[str] | None = None, pdf: bool = True) -> list[Path]:
    """Write output/NAME.md, NAME.html and NAME.tex for every built-in example (what ``derive solve NAME``
    prints), and output/NAME.pdf when ``pdf`` and TeX is installed."""
    written = []
    for name in names or example_names():
        solution = solve(name)
        doc = document(solution)
        for fmt in ("md", "html", "tex"):
            path = folder / f"{name}.{fmt}"
            text = render_solution(solution, fmt, doc=doc)
            write_atomically(path, text)
            written.append(path)
        if pdf and latex_tools() is not None:
            path = folder / f"{name}.pdf"
            write_atomically(path, build_pdf(text, name))
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m derive.text.gallery --gallery``: regenerate output/ (Markdown, LaTeX and, with TeX, PDF)."""
    p = argparse.ArgumentParser(prog="python -m derive.text.gallery", description=main.__doc__)
    p.add_argument("--gallery", action="store_true", help="rewrite output/NAME.md, NAME.tex and NAME.pdf")
    p.add_argument("--no-pdf", action="store_true", help="leave the PDFs alone")
    args = p.parse_args(argv)
    if not args.gallery:
        p.print_help()
        return 2
    try:
        paths = gallery(pdf=not args.no_pdf)
    except RenderError as exc:
        print(f"derive: error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)
    if not args.no_pdf and latex_tools() is None:
        print(f"note: the PDFs were not rebuilt: TeX is not installed ({TEX_PACKAGES})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
