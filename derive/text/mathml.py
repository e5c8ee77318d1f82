"""The printer's LaTeX as MathML Core for HTML pages: rendered by the browser itself, read by screen readers."""

from __future__ import annotations

import html
import re
from functools import lru_cache

from latex2mathml.converter import convert

from derive.errors import RenderError

# MathML Core renders mathvariant only as "normal": bold digits (the 1 of a vector of ones) as Unicode's own
BOLD_DIGITS = {str(d): chr(0x1D7CE + d) for d in range(10)}
_BOLD_MN = re.compile(r'<mn mathvariant="bold">([0-9]+)</mn>')


@lru_cache(maxsize=4096)        # a document repeats its names and numbers many times
def mathml(latex: str, display: bool = False) -> str:
    """One formula of the printer's LaTeX as a <math> element, its LaTeX kept as alttext.

    >>> mathml("x_{1}").startswith('<math alttext="x_{1}" xmlns="http://www.w3.org/1998/Math/MathML"')
    True
    """
    try:
        out = convert(latex, display="block" if display else "inline")
    except Exception as exc:       # the converter's own errors have no common base class
        raise RenderError(f"no MathML for the formula {latex[:80]!r}: {exc}") from None
    # \left( \right) as fences without the operator spacing Chromium gives stretchy ones: σ(z), not σ ( z )
    out = out.replace('fence="true"', 'fence="true" lspace="0" rspace="0"')
    out = _BOLD_MN.sub(lambda m: "<mn>" + "".join(BOLD_DIGITS[c] for c in m[1]) + "</mn>", out)
    alt = html.escape(" ".join(latex.split()), quote=True)
    return out.replace("<math ", f'<math alttext="{alt}" ', 1)
