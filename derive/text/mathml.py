"""The printer's LaTeX as MathML Core for HTML pages: rendered by the browser itself, read by screen readers."""

from __future__ import annotations

import html
import re
from functools import lru_cache

from latex2mathml.converter import convert

from derive.errors import RenderError
from derive.text.fastmathml import fast_convert

# MathML Core renders mathvariant only as "normal": bold digits (the 1 of a vector of ones) as Unicode's own
BOLD_DIGITS = {str(d): chr(0x1D7CE + d) for d in range(10)}
_BOLD_MN = re.compile(r'<mn mathvariant="bold">([0-9]+)</mn>')
# an operator element whole, or any other tag or text
_TOKEN = re.compile(r'<mo\b[^>]*?(?:/>|>[^<]*</mo>)|<[^>]+>|[^<]+')
_SLASH = "<mo>&#x0002F;</mo>"
_SIGNS = {"<mo>&#x02212;</mo>", "<mo>&#x0002B;</mo>", "<mo>+</mo>"}
_TALL = ("<mfrac", "<mtable", "<munder", "<mover")     # what a \\left( … \\right) must grow around
_CLOSING = {"&#x00029;", ")", "]", "&#x0005D;", "&#x0007D;", "&#x0007C;", "|", "&#x02016;"}


@lru_cache(maxsize=1 << 14)     # a document repeats its names and numbers (16-16-16-16: 5,700 formulas)
def mathml(latex: str, display: bool = False) -> str:
    """One formula of the printer's LaTeX as a <math> element, its LaTeX kept as alttext.

    >>> mathml("x_{1}").startswith('<math alttext="x_{1}" xmlns="http://www.w3.org/1998/Math/MathML"')
    True
    """
    out = _converted(latex, "block" if display else "inline")
    fenced, signed = 'fence="true"' in out, any(sign in out for sign in _SIGNS)
    if fenced or signed:        # (most formulas are neither: a name, a number, a product of them)
        # \left( \right) as fences without the operator spacing Chromium gives stretchy ones: σ(z), not σ ( z )
        out = out.replace('fence="true"', 'fence="true" lspace="0" rspace="0"')
        tokens = [t[0] for t in _TOKEN.finditer(out)]
        out = "".join(_signs_as_prefix(_plain_fences(tokens) if fenced else tokens))
    if _SLASH in out:       # ∂E/∂w set close, as TeX sets its ordinary /, not as a binary operator: ∂E / ∂w
        out = out.replace(_SLASH, '<mo lspace="0" rspace="0">&#x0002F;</mo>')
    if 'mathvariant="bold"' in out:
        out = _BOLD_MN.sub(lambda m: "<mn>" + "".join(BOLD_DIGITS[c] for c in m[1]) + "</mn>", out)
    alt = html.escape(" ".join(latex.split()), quote=True)
    return out.replace("<math ", f'<math alttext="{alt}" ', 1)


def _converted(latex: str, display: str) -> str:
    """latex2mathml's MathML of the formula: the fast path's where it knows the formula (same bytes), else its own."""
    out = fast_convert(latex, display)
    if out is not None:
        return out
    try:
        return convert(latex, display=display)
    except Exception as exc:       # the converter's own errors have no common base class
        raise RenderError(f"no MathML for the formula {latex[:80]!r}: {exc}") from None


def _signs_as_prefix(tokens: list[str]) -> list[str]:
    """A − or + right after an opening bracket or another operator as a sign, as TeX sets it: (−0.04), = −0.04.

    MathML Core takes an operator for a prefix only as the first child of its row, so the converter's
    (−0.04) and = −0.04 would get a binary operator's spaces: ( − 0.04 ), = − 0.04.
    """
    out, after_operator = [], False
    for text in tokens:
        if text in _SIGNS and after_operator:
            text = text.replace("<mo>", '<mo form="prefix">')
        out.append(text)
        if text.startswith("<mo"):
            after_operator = _before_a_sign(text)
        elif not text.startswith(("<mrow", "</mrow")):     # a row's tags are not between the two
            after_operator = False
    return out


def _before_a_sign(operator: str) -> bool:
    """Whether a − or + after this operator is a sign: after any but a closing bracket or postfix fence."""
    content = operator.split(">", 1)[1].rsplit("</mo>", 1)[0] if not operator.endswith("/>") else ""
    return 'form="postfix"' not in operator and content not in _CLOSING


def _plain_fences(tokens: list[str]) -> list[str]:
    """\\left( … \\right) around nothing taller than a line as brackets of the text's size.

    TeX's \\left( around σ(z) or (1 − a) is the normal size anyway; a stretchy one costs Firefox a wrong width
    (it reserves room for the tallest the bracket could grow: a gap before the next word).
    """
    tokens = list(tokens)
    opened: list[int] = []
    for i, token in enumerate(tokens):
        if not token.startswith("<mo") or 'fence="true"' not in token:
            continue
        if 'form="prefix"' in token:
            opened.append(i)
        elif 'form="postfix"' in token and opened:
            start = opened.pop()
            if not any(t.startswith(_TALL) for t in tokens[start + 1:i]):
                for j in (start, i):
                    tokens[j] = tokens[j].replace('stretchy="true"', 'stretchy="false"', 1)
    return tokens
