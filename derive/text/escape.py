"""User text escaped for LaTeX, Markdown, HTML and XML: every character prints as itself, nothing runs."""

from __future__ import annotations

import re
import unicodedata

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "%": r"\%", "#": r"\#",
    "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "\u00a0": "~",
}

# Characters pdflatex's utf8 input cannot typeset in the default OT1 encoding, written out.
_UNICODE = {
    "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}", "•": r"\ensuremath{\bullet}",
    "−": r"\ensuremath{-}", "×": r"\ensuremath{\times}", "·": r"\ensuremath{\cdot}", "÷": r"\ensuremath{\div}",
    "±": r"\ensuremath{\pm}", "≈": r"\ensuremath{\approx}", "≠": r"\ensuremath{\neq}", "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}", "→": r"\ensuremath{\rightarrow}", "←": r"\ensuremath{\leftarrow}",
    "⇒": r"\ensuremath{\Rightarrow}", "∂": r"\ensuremath{\partial}", "∑": r"\ensuremath{\sum}",
    "∏": r"\ensuremath{\prod}", "√": r"\ensuremath{\surd}", "∞": r"\ensuremath{\infty}", "∈": r"\ensuremath{\in}",
    "⊙": r"\ensuremath{\odot}", "∘": r"\ensuremath{\circ}", "′": r"\ensuremath{'}", "°": r"\ensuremath{^\circ}",
    "½": r"\ensuremath{\tfrac12}", "¼": r"\ensuremath{\tfrac14}", "¾": r"\ensuremath{\tfrac34}",
    "²": r"\ensuremath{^2}", "³": r"\ensuremath{^3}", "¹": r"\ensuremath{^1}", "µ": r"\ensuremath{\mu}",
    "ⁿ": r"\ensuremath{^n}", "₁": r"\ensuremath{_1}", "₂": r"\ensuremath{_2}", "ᵀ": r"\ensuremath{^{\mathsf{T}}}",
    "§": r"\S{}", "¶": r"\P{}", "©": "(c)", "€": "EUR", "£": "GBP",
    "«": r"\ensuremath{\ll}", "»": r"\ensuremath{\gg}", "¡": r"!`", "¿": r"?`", "\t": " ",
}
_GREEK = dict(zip(
    "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ",
    r"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon "
    r"phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split()))
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0327": "c",
            "\u030c": "v", "\u0304": "="}


def _latex_char(c: str) -> str:
    if c in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[c]
    if " " <= c <= "~" or c == "\n":
        return c
    if c in _UNICODE:
        return _UNICODE[c]
    if c in _GREEK:
        return rf"\ensuremath{{\{_GREEK[c]}}}"
    parts = unicodedata.normalize("NFD", c)
    if len(parts) == 2 and " " <= parts[0] <= "~" and parts[0].isalpha() and parts[1] in _ACCENTS:
        return rf"\{_ACCENTS[parts[1]]}{{{parts[0]}}}"      # é → \'{e}: works in every font encoding
    special = {"ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "ø": r"\o{}", "Ø": r"\O{}", "å": r"\aa{}",
               "Å": r"\AA{}", "œ": r"\oe{}", "Œ": r"\OE{}", "ı": r"\i{}", "ł": r"\l{}", "Ł": r"\L{}"}
    if c in special:
        return special[c]
    if unicodedata.category(c).startswith(("C", "Z")):
        return " "
    return rf"\texttt{{[U+{ord(c):04X}]}}"                  # anything else is named, never passed to TeX


# a character _latex_char writes otherwise, a quote, a line's end (paragraphs): what escape_latex has to work on
_LATEX_ESCAPED = re.compile("[^" + re.escape("".join(sorted(
    {chr(i) for i in range(ord(" "), ord("~") + 1)} - set(_LATEX_SPECIAL) - {'"'}))) + "]")


def escape_latex(text: str) -> str:
    """User text as LaTeX text: every character prints as itself, nothing runs.

    >>> escape_latex(r"\\input{/etc/passwd} $x$ & 50%")
    '\\\\textbackslash{}input\\\\{/etc/passwd\\\\} \\\\$x\\\\$ \\\\& 50\\\\%'
    """
    if not _LATEX_ESCAPED.search(text):     # most text (a name, a number, a sentence): every character as itself
        return text
    text = re.sub(r"[ \t]*\n\s*\n\s*", "\n\n", text)     # keep paragraphs, drop stray blank lines
    out, opened = [], False
    for c in text:
        if c == '"':                                        # "…" as TeX quotes: `` first, '' second
            out.append("''" if opened else "``")
            opened = not opened
        else:
            out.append(_latex_char(c))
    return "".join(out)


_MD_SPECIAL = set("\\`*_{}[]<>#|$~&!")


def escape_markdown(text: str) -> str:
    """User text as Markdown text: no emphasis, math, HTML, links, headings or tables start in it.

    Whitespace runs (newlines too) become one space, so the text stays one paragraph; the
    characters Markdown, GitHub math and HTML give meaning to are backslash-escaped.

    >>> escape_markdown("$x$ & *y* # <b>")
    '\\\\$x\\\\$ \\\\& \\\\*y\\\\* \\\\# \\\\<b\\\\>'
    """
    out = markdown_chars(" ".join(text.split()))
    if out[:1] in ("-", "+", "=", ".") or re.match(r"\d+[.)]", out):
        out = "\\" + out if not out[:1].isdigit() else re.sub(r"^(\d+)([.)])", r"\1\\\2", out)
    return out


def markdown_chars(text: str) -> str:
    """Backslash-escape the characters Markdown, GitHub math and HTML give meaning to; nothing else."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def escape_xml(text: str) -> str:
    """Text for XML/SVG/HTML content and attribute values."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


# a spreadsheet reads a cell that starts with one of these as a formula (CSV injection): =HYPERLINK(…), +1, @SUM
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(text: str) -> str:
    """User text for a CSV cell that a spreadsheet opens as text, never as a formula (a leading ' shows it)."""
    return "'" + text if text.startswith(_FORMULA_START) else text
