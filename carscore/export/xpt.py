"""SAS transport (XPT v5) limits for ADCART (outputs.md §1 "XPT"): names of at
most 8 characters, labels of at most 40, character values of at most 200
bytes, ASCII text. Text longer than 200 bytes goes on in continuation
variables (AREASON, AREASN1, AREASN2...), cut at the last space at or before
byte 200 with that space dropped, so that joining the parts with one space
restores the text."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import polars as pl

from carscore.errors import UsageError

MAX_NAME, MAX_LABEL, MAX_BYTES = 8, 40, 200
DATE_FORMAT = "E8601DA10."
INSTALL_HINT = "writing SAS transport files needs pyreadstat: pip install 'carscore[xpt]'"

# outputs.md §1: the characters with a conventional ASCII spelling; others go by NFKD
ASCII_SPELLINGS = {
    "µ": "u",
    "μ": "u",
    "≥": ">=",
    "≤": "<=",
    "→": "->",
    "×": "x",
    "±": "+/-",
    "–": "-",
    "—": "-",
}
# the continuation variables' stems (outputs.md §1 names AREASN and SRCRC)
CONTINUATION_STEMS = {"AREASON": "AREASN", "SRCREC": "SRCRC", "SRCROWS": "SRCRW", "SRCFILE": "SRCFL"}


def ascii_text(text: str) -> str:
    for character, spelling in ASCII_SPELLINGS.items():
        text = text.replace(character, spelling)
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def chunks(text: str, limit: int = MAX_BYTES) -> list[str]:
    """ASCII text in parts of at most ``limit`` bytes, each cut at the last space
    at or before byte ``limit`` (the space dropped); a stretch with no space is
    cut at ``limit`` itself."""
    parts = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit + 1)
        if cut < 0:
            parts.append(text[:limit])
            text = text[limit:]
        else:
            parts.append(text[:cut])
            text = text[cut + 1 :]
    parts.append(text)
    return parts


def continuation_name(name: str, part: int) -> str:
    stem = CONTINUATION_STEMS.get(name, name[: MAX_NAME - 1])
    return (stem[: MAX_NAME - len(str(part))] + str(part))[:MAX_NAME]


def xpt_table(table: pl.DataFrame, labels: dict[str, str]) -> tuple[pl.DataFrame, dict[str, str]]:
    """The table within the XPT limits, with the label of every variable."""
    columns: list[pl.Series] = []
    out_labels: dict[str, str] = {}
    for name in table.columns:
        series = table[name]
        label = labels.get(name, name)
        if series.dtype != pl.String:
            columns.append(series)
            out_labels[name] = label[:MAX_LABEL]
            continue
        texts = [None if v is None else ascii_text(v) for v in series.to_list()]
        split = [None if v is None else chunks(v) for v in texts]
        width = max((len(s) for s in split if s is not None), default=1)
        columns.append(pl.Series(name, [None if s is None else s[0] for s in split], dtype=pl.String))
        out_labels[name] = label[:MAX_LABEL]
        for part in range(1, width):
            extra = continuation_name(name, part)
            columns.append(
                pl.Series(extra, [s[part] if s is not None and len(s) > part else None for s in split], dtype=pl.String)
            )
            out_labels[extra] = f"{label} (Part {part})"[:MAX_LABEL]
    names = [s.name for s in columns]
    too_long = [n for n in names if len(n) > MAX_NAME]
    if too_long or len(set(names)) != len(names):
        raise UsageError(f"the variables {', '.join(too_long or names)} cannot be written to a SAS transport file")
    return pl.DataFrame(columns), out_labels


def require_pyreadstat() -> None:
    try:
        import pyreadstat  # noqa: F401
    except ImportError:
        raise UsageError(INSTALL_HINT) from None


def xpt_bytes(table: pl.DataFrame, labels: dict[str, str], name: str, label: str, dates: list[str]) -> bytes:
    """A SAS transport v5 file: dates with format E8601DA10, text within the limits.
    (pyreadstat writes to a path: a private temporary folder, read back whole.)"""
    require_pyreadstat()
    import tempfile

    import pyreadstat

    fitted, fitted_labels = xpt_table(table, labels)
    with tempfile.TemporaryDirectory(prefix="carscore-xpt-") as folder:
        path = Path(folder) / f"{name.lower()}.xpt"
        pyreadstat.write_xport(
            fitted,
            str(path),
            file_label=ascii_text(label)[:MAX_LABEL],
            column_labels=fitted_labels,
            table_name=name,
            file_format_version=5,
            variable_format={d: DATE_FORMAT for d in dates if d in fitted.columns},
        )
        return path.read_bytes()
