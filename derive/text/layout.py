"""The network diagram's geometry: where each weight's label sits so that no label covers another or a unit.

Everything is measured in the SVG's pixels. The PDF's picture is laid out again with the same rules for its
page's width (PAGE_PX) and drawn at PRINT_PT points a pixel or more (fonts included), so that its labels
print at 7 pt at the least and a layout clear here is clear there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

MARGIN = 50             # pixels around the drawing
DY = 72                 # pixels between two units of a layer
DX = 240                # pixels between two layers, at the least
STRICT_WIDEST = 360     # as far apart as the layers move to keep every label off the other edges too
WIDEST = 480            # … and off the other labels: beyond, the labels are left out (the setup lists every weight)
RADIUS = 18             # a unit's circle
# the PDF lays the diagram out anew for its page: 0.7 pt a pixel at the least, so that a 10 px label prints at
# 7 pt, on the text width (17 cm, 483.7 pt, less a margin); the units further apart for it where that helps
PRINT_PT = 0.7          # points per pixel, at the least
PAGE_PT = 480           # points across the page's text
PAGE_PX = PAGE_PT / PRINT_PT
PRINT_DX = 160          # pixels between two layers, at the least, in print
PRINT_DY = (72, 84, 96, 108, 120)       # pixels between two units of a layer, in print, most preferred first
LABEL_PX = 10           # a label's type size, in pixels
LABEL_HEIGHT = 15       # a label's box across its edge, in pixels: raised runs to lowered ones
CHAR_WIDTH = 5.6        # an average character of 10 px sans-serif
SIZES = (1, 0.7)        # type sizes: the line, and a sub- or superscript
# where along an edge a label may sit (0 at the source), most preferred first: near the source,
# where the edges to different units fan out
POSITIONS = tuple(sorted((round(0.1 + 0.025 * k, 3) for k in range(33)), key=lambda t: (abs(t - 0.25), t)))


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float

    def at(self, t: float) -> tuple[float, float]:
        return self.x1 + (self.x2 - self.x1) * t, self.y1 + (self.y2 - self.y1) * t

    @property
    def length(self) -> float:
        return math.hypot(self.x2 - self.x1, self.y2 - self.y1)

    @cached_property
    def box(self) -> tuple[float, float, float, float]:
        """(least x, greatest x, least y, greatest y), made once: an edge is tested against every label of a
        printed diagram at each place the label may take."""
        return min(self.x1, self.x2), max(self.x1, self.x2), min(self.y1, self.y2), max(self.y1, self.y2)


@dataclass(frozen=True)
class Piece:
    """A run of a label's text: on the line, raised (a superscript) or lowered (a subscript)."""

    text: str
    shift: int          # 0 on the line, 1 raised, -1 lowered


_RUN = re.compile(r"([_^])\{((?:[^{}]|\{[^{}]*\})*)\}|([_^])(.)|([^_^]+)")     # a script's group, a script, a run
_MARKS = re.compile(r"[{}_^]")


def pieces(tex: str) -> tuple[Piece, ...]:
    """A name of the one printer (w^{(1)}_{11}, h_{1}, z_{h_{1}}) as text runs for an SVG label."""
    out, rest = [], tex
    while rest:
        found = _RUN.match(rest)
        if found is None:
            break
        mark, body = (found[1], found[2]) if found[1] else (found[3], found[4]) if found[3] else ("", found[5])
        text = _MARKS.sub("", body).replace("\\", "")
        out.append(Piece(text, {"": 0, "^": 1, "_": -1}[mark]))
        rest = rest[found.end():]
    return tuple(out)


def label_width(runs: Sequence[Piece], value: str) -> float:
    """The width of a label "name = value": its name's runs (sub- and superscripts smaller), then " = value"."""
    return sum(len(r.text) * CHAR_WIDTH * SIZES[r.shift != 0] for r in runs) + CHAR_WIDTH * (3 + len(value))


def _distance(p: tuple[float, float], s: Segment) -> float:
    """The distance from a point to a segment."""
    dx, dy = s.x2 - s.x1, s.y2 - s.y1
    length2 = dx * dx + dy * dy
    t = 0.0 if not length2 else max(0.0, min(1.0, ((p[0] - s.x1) * dx + (p[1] - s.y1) * dy) / length2))
    return math.hypot(p[0] - s.x1 - t * dx, p[1] - s.y1 - t * dy)


def _cross(a: Segment, b: Segment) -> bool:
    def side(s: Segment, x: float, y: float) -> float:
        return (s.x2 - s.x1) * (y - s.y1) - (s.y2 - s.y1) * (x - s.x1)
    return (side(a, b.x1, b.y1) * side(a, b.x2, b.y2) < 0) and (side(b, a.x1, a.y1) * side(b, a.x2, a.y2) < 0)


def gap(a: Segment, b: Segment) -> float:
    """The shortest distance between two segments."""
    if _cross(a, b):
        return 0.0
    return min(_distance((a.x1, a.y1), b), _distance((a.x2, a.y2), b), _distance((b.x1, b.y1), a),
               _distance((b.x2, b.y2), a))


def label_axis(edge: Segment, t: float, width: float) -> Segment:
    """The label's axis: its width along the edge, centred at ``t`` just above the edge (the SVG's text stands
    on a baseline 5 px above its edge, TikZ's node sits ``above``), a box LABEL_HEIGHT across it."""
    ux, uy = (edge.x2 - edge.x1) / edge.length, (edge.y2 - edge.y1) / edge.length
    cx, cy = edge.at(t)
    cx, cy = cx + uy * LABEL_HEIGHT / 2, cy - ux * LABEL_HEIGHT / 2
    half = width / 2
    return Segment(cx - ux * half, cy - uy * half, cx + ux * half, cy + uy * half)


PADDING = 3             # pixels between two labels


def _off(axis: Segment, others: Sequence[Segment], d: float) -> bool:
    """Whether ``axis`` lies ``d`` from every one of ``others``: the boxes around the two d apart along x or
    along y (the cheap test first; a diagram's label is far from most edges), else their gap."""
    x0, x1, y0, y1 = axis.box
    for other in others:
        u0, u1, v0, v1 = other.box
        if not (x0 - u1 >= d or u0 - x1 >= d or y0 - v1 >= d or v0 - y1 >= d or gap(axis, other) >= d):
            return False
    return True


def clear(axis: Segment, placed: Sequence[Segment], units: Sequence[Segment], edges: Sequence[Segment] = ()) -> bool:
    """Whether a label keeps clear of the labels placed before it, of every unit (a point: a segment of length 0)
    and of ``edges``."""
    return (_off(axis, placed, LABEL_HEIGHT + PADDING) and _off(axis, units, RADIUS + LABEL_HEIGHT / 2 + PADDING)
            and _off(axis, edges, LABEL_HEIGHT / 2))


CELL = 64               # pixels: the squares segments are filed by
NEAR = RADIUS + LABEL_HEIGHT / 2 + PADDING + 1      # beyond the largest distance ``clear`` asks for, and a pixel more


class _Filed:
    """Segments filed by the CELL squares their boxes cover, so that a label is tested against those whose box
    comes within NEAR of its own, not against every one: a segment further away passes ``_off``'s box test anyway."""

    def __init__(self, segments: Sequence[Segment] = ()):
        self.segments: list[Segment] = []
        self.cells: dict[tuple[int, int], list[int]] = {}
        for s in segments:
            self.add(s)

    def add(self, s: Segment) -> None:
        for cell in _cells(s, 0.0):
            self.cells.setdefault(cell, []).append(len(self.segments))
        self.segments.append(s)

    def near(self, a: Segment) -> list[Segment]:
        found = {k for cell in _cells(a, NEAR) for k in self.cells.get(cell, ())}
        return [self.segments[k] for k in sorted(found)]


def _cells(s: Segment, d: float) -> list[tuple[int, int]]:
    """The squares the box around a segment, widened by d, covers."""
    left, right, low, high = s.box
    x0, x1 = math.floor((left - d) / CELL), math.floor((right + d) / CELL)
    y0, y1 = math.floor((low - d) / CELL), math.floor((high + d) / CELL)
    return [(i, j) for i in range(x0, x1 + 1) for j in range(y0, y1 + 1)]


def place(edges: Sequence[Segment], widths: Sequence[float], units: Sequence[tuple[float, float]],
          strict: bool, drawn: Sequence[Segment] | None = None) -> tuple[float, ...] | None:
    """A position for every edge's label, each clear of the others and of the units (``strict``: of the
    other edges too, the labelled ones or every one ``drawn``), or None."""
    placed = _Filed()
    positions = []
    points = _Filed([Segment(x, y, x, y) for x, y in units])
    # each edge's ends, to leave the edge itself out of the others by: a dataclass's == was a third of the time
    ends = [(e.x1, e.y1, e.x2, e.y2) for e in drawn] if strict and drawn is not None else []
    for i, (edge, width) in enumerate(zip(edges, widths)):
        if edge.length < width + 2 * RADIUS:
            return None
        others: list[Segment] = []
        if strict and drawn is None:
            others = [e for j, e in enumerate(edges) if j != i]
        elif strict and drawn is not None:
            own = (edge.x1, edge.y1, edge.x2, edge.y2)
            others = [e for e, at in zip(drawn, ends) if at != own]
        for t in POSITIONS:
            axis = label_axis(edge, t, width)
            if clear(axis, placed.near(axis), points.near(axis), others):
                placed.add(axis)
                positions.append(t)
                break
        else:
            return None
    return tuple(positions)
