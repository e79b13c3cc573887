"""A Drawing as bytes (PNG, SVG, PDF) and as inline SVG markup for an HTML page."""

from __future__ import annotations

import hashlib
import io
import re
from html import escape

import matplotlib

from carscore.figures.drawing import Drawing

FORMATS = ("png", "svg", "pdf")
# text stays text in SVG (small files, selectable words); the generic family is the fallback
# wherever the named font is missing
SVG_SETTINGS = {"svg.fonttype": "none"}


def image_bytes(d: Drawing, fmt: str = "png") -> bytes:
    """The figure as PNG, SVG or PDF; dates are left out so the same data give the same file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format '{fmt}'; known: {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Title": d.title},
        "pdf": {"CreationDate": None, "Title": d.title},
    }
    with matplotlib.rc_context({**SVG_SETTINGS, "svg.hashsalt": "carscore"}):
        d.figure.savefig(buffer, format=fmt, metadata=metadata[fmt])
    return buffer.getvalue()


def pdf_pages(drawings: list[Drawing]) -> bytes:
    """Several drawings as the pages of one PDF."""
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"CreationDate": None, "Title": drawings[0].title if drawings else ""}) as pdf:
        for d in drawings:
            pdf.savefig(d.figure)
    return buffer.getvalue()


def svg_text(d: Drawing, id_prefix: str | None = None) -> str:
    """Inline SVG markup: no XML declaration or DOCTYPE, the alt text as its <title>, text with a
    generic font family, and element ids of its own (several figures share one HTML page): each
    id starts with ``id_prefix``, by default a digest of the figure's markup, so that the same
    figure gets the same ids in any process and different figures never share one."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({**SVG_SETTINGS, "svg.hashsalt": "carscore"}):
        d.figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue().decode("utf-8")
    start = text.find("<svg")
    text = text[start:]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)
    text = re.sub(r'(font-family:\s*)([^;"]+)', _with_generic, text)
    prefix = id_prefix or "f" + hashlib.sha1((d.alt + text).encode("utf-8")).hexdigest()[:10]
    text = _own_ids(text, prefix)
    opening = text.find(">") + 1
    title = f"\n <title>{escape(d.alt, quote=False)}</title>"
    text = text[:opening].replace("<svg ", '<svg role="img" ', 1) + title + text[opening:]
    return text.rstrip() + "\n"


def _own_ids(text: str, prefix: str) -> str:
    """Every element id, and every reference to one, prefixed: matplotlib numbers its groups
    (axes_1, line2d_1, ...) afresh in each figure, and ids must be unique on an HTML page."""
    ids = set(re.findall(r' id="([^"]+)"', text))
    if not ids:
        return text

    def renamed(match: re.Match[str]) -> str:
        name = match.group(2)
        return f"{match.group(1)}{prefix}-{name}{match.group(3)}" if name in ids else match.group(0)

    text = re.sub(r'( id=")([^"]+)(")', renamed, text)
    return re.sub(r'((?:href="|url\()#)([^")]+)([")])', renamed, text)


def _with_generic(match: re.Match[str]) -> str:
    families = match.group(2).strip()
    if families.endswith("sans-serif") or families.endswith("monospace") or families.endswith("serif"):
        return match.group(0)
    return f"{match.group(1)}{families}, sans-serif"
