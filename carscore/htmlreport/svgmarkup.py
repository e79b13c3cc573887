"""matplotlib's SVG made fit to sit, many figures together, inside one HTML page.

- The XML prologue, metadata, comments and namespace declarations go: the
  HTML parser puts an <svg> element in the SVG namespace itself, and the page
  then names no URL at all.
- Every id gets a prefix of its own figure, so that two figures' clip paths
  and markers never answer to the same id; an id nothing refers to goes.
- Coordinates keep one decimal (a tenth of a point, below what a screen or
  a printer shows), and the indentation and the groups with no attribute
  (which change nothing) go: the figures of a 200-course report are most of
  its size.
- Hatch patterns, identical in every figure that uses them, are defined once
  for the whole page, and so are the styles (a few dozen, repeated on tens
  of thousands of elements): each becomes a class of the page's stylesheet
  (``SharedMarkup``).
- The alt text is the figure's accessible name: role="img", aria-label and a
  <title>.
"""

from __future__ import annotations

import html
import re

_METADATA = re.compile(r"<metadata>.*?</metadata>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::[A-Za-z]+)?="[^"]*"')
_SVG_OPEN = re.compile(r"<svg\b([^>]*)>")
# three decimals or more (coordinates; a style's widths and opacities have fewer): one is kept
_LONG_DECIMAL = re.compile(r"(\d\.\d)\d\d+")
_PATH_DATA = re.compile(r'( d=")([^"]*)"')
_TEXT_NODE = re.compile(r">([^<]+)<")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_GROUP_TAG = re.compile(r"<g(?:\s[^>]*[^/])?>|</g>")
_PATH_COMMAND = re.compile(r" ?([MLHVCSQTAZmlhvcsqtaz]) ?")
_BETWEEN_TAGS = re.compile(r">\s+<")
_REFERENCES = re.compile(r'(?:url\(#|href="#)([^")]+)')
_ID = re.compile(r'\sid="([^"]+)"')
_PATTERN = re.compile(r'<pattern id="([^"]+)"(.*?)</pattern>', re.DOTALL)
_PATTERN_OR_NOT = re.compile(r"(<pattern .*?</pattern>)", re.DOTALL)
_EMPTY_DEFS = re.compile(r"<defs></defs>")
_NO_ROTATION = re.compile(r'\stransform="rotate\(-?0 [^")]*\)"')
_STYLE = re.compile(r'\sstyle="([^"]*)"')


def inline_svg(svg: str, prefix: str, alt: str) -> str:
    """One figure's SVG as markup for the page; ``prefix`` is unique to the figure."""
    svg = svg[max(svg.find("<svg"), 0) :]
    svg = _METADATA.sub("", svg)
    svg = _COMMENT.sub("", svg)
    svg = _BETWEEN_TAGS.sub("><", svg).strip()
    # the figure's words (tick labels, titles, patient ids) are set aside while
    # its markup is worked on: nothing below may change them
    words: list[tuple[bool, str]] = []

    def set_aside(m: re.Match[str]) -> str:
        words.append((svg.startswith("<style", svg.rfind("<", 0, m.start())), m.group(1)))
        return f">\x00{len(words) - 1}\x00<"

    svg = _TEXT_NODE.sub(set_aside, svg)
    # the namespaces are declared on the <svg> element alone
    end = svg.find(">") + 1
    svg = _NAMESPACES.sub("", svg[:end]) + svg[end:].replace("xlink:href=", "href=")
    svg = compact(svg, prefix)
    svg = _PLACEHOLDER.sub(lambda m: _inert(*words[int(m.group(1))]), svg)
    label = html.escape(alt, quote=True)
    opening = _SVG_OPEN.search(svg)
    if opening is None:
        raise ValueError("the figure is not an SVG image")
    attributes = re.sub(r'\s+(role|aria-label)="[^"]*"', "", opening.group(1))
    rest = svg[opening.end() :]
    if rest.startswith("<title"):
        rest = rest[rest.index("</title>") + len("</title>") :]
    return f'{svg[: opening.start()]}<svg{attributes} role="img" aria-label="{label}"><title>{label}</title>{rest}'


def _inert(is_style: bool, text: str) -> str:
    """Words written so that no pattern of this module or of SharedMarkup (an
    attribute, a url(#...)) can match inside them; a stylesheet is kept as it is."""
    return text if is_style else text.replace('"', "&quot;").replace("(", "&#40;")


def compact(svg: str, prefix: str) -> str:
    """One decimal, no indentation, no rotation by 0 degrees, no empty group, and
    short ids of this figure's own (``prefix``) for the elements referred to;
    no id for the others. ``svg`` holds markup only (its words set aside)."""
    # a hatch pattern (tens of kilobytes of dots) is shared by the whole page: left as it is
    pieces = _PATTERN_OR_NOT.split(svg)
    svg = "".join(
        piece if piece.startswith("<pattern ") else _PATH_DATA.sub(_compact_path, _LONG_DECIMAL.sub(_first_decimal, piece))
        for piece in pieces
    )
    svg = _NO_ROTATION.sub("", svg)
    used = set(_REFERENCES.findall(svg))
    short: dict[str, str] = {}
    for found in _ID.findall(svg):
        if found in used and found not in short:
            short[found] = f"{prefix}-{_base36(len(short))}"
    svg = _ID.sub(lambda m: f' id="{short[m.group(1)]}"' if m.group(1) in short else "", svg)
    svg = _REFERENCES.sub(lambda m: m.group(0).replace(m.group(1), short.get(m.group(1), m.group(1))), svg)
    return _without_bare_groups(svg)


def _without_bare_groups(svg: str) -> str:
    """Leave out every <g> with no attribute, and its closing tag."""
    parts: list[str] = []
    kept: list[bool] = []
    last = 0
    for m in _GROUP_TAG.finditer(svg):
        tag = m.group(0)
        if tag == "</g>":
            keep = kept.pop() if kept else True
        else:
            keep = tag != "<g>"
            kept.append(keep)
        if not keep:
            parts.append(svg[last : m.start()])
            last = m.end()
    parts.append(svg[last:])
    return "".join(parts).replace("<g/>", "")


def _css_text(style: str) -> str:
    return style.replace("<", "\\3c ")


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        n, r = divmod(n, 36)
        text = digits[r] + text
        if n == 0:
            return text


def _first_decimal(m: re.Match[str]) -> str:
    return m.group(1)


def _compact_path(m: re.Match[str]) -> str:
    path = _PATH_COMMAND.sub(r"\1", " ".join(m.group(2).split()))
    return f'{m.group(1)}{path}"'


class SharedMarkup:
    """What the page's figures share, defined once: hatch patterns (each
    figure's copy is taken out and its references pointed at the shared one)
    and styles (each style attribute becomes a class of the page)."""

    def __init__(self) -> None:
        self.patterns: dict[str, str] = {}  # a pattern's markup without its id -> its shared id
        self.styles: dict[str, str] = {}  # a style attribute's text -> its class

    def take(self, svg: str) -> str:
        renamed: dict[str, str] = {}

        def shared(m: re.Match[str]) -> str:
            body = m.group(2)
            if body not in self.patterns:
                self.patterns[body] = f"hatch{len(self.patterns) + 1}"
            renamed[m.group(1)] = self.patterns[body]
            return ""

        svg = _PATTERN.sub(shared, svg)
        if renamed:
            svg = _EMPTY_DEFS.sub("", svg)
            svg = re.sub(
                r"url\(#([^)]+)\)",
                lambda m: f"url(#{renamed[m.group(1)]})" if m.group(1) in renamed else m.group(0),
                svg,
            )
        return _STYLE.sub(self._style_class, svg)

    def _style_class(self, m: re.Match[str]) -> str:
        style = html.unescape(m.group(1))
        if style not in self.styles:
            self.styles[style] = f"k{len(self.styles) + 1}"
        return f' class="{self.styles[style]}"'

    def stylesheet(self) -> str:
        """The figures' styles as rules of the page's stylesheet: a class outranks
        matplotlib's own ``*`` rule as the style attribute did."""
        # a style value never closes the <style> element it is written in
        return "\n".join(f"svg .{name} {{ {_css_text(style)} }}" for style, name in self.styles.items())

    def definitions(self) -> str:
        """A hidden SVG that holds every shared pattern (an element with
        display:none would not paint its patterns, so it takes no room instead)."""
        if not self.patterns:
            return ""
        patterns = "".join(f'<pattern id="{shared_id}"{body}</pattern>' for body, shared_id in self.patterns.items())
        hidden = 'class="shared-patterns" width="0" height="0" aria-hidden="true" focusable="false"'
        return f"<svg {hidden}><defs>{patterns}</defs></svg>"
