"""Table 2 written out (outputs.md §3): a Markdown pipe table, a long CSV (one
row per row_id x system) and one self-contained HTML table."""

from __future__ import annotations

from html import escape

import polars as pl

from carscore.export.table2 import Table2, percent_text

CAPTION = "Toxicity after CAR-T infusion"
CSV_COLUMNS = ["row_id", "label", "system", "n", "denominator", "percent", "median", "min", "max", "text"]


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(table: Table2) -> str:
    heads = ["Characteristic", *[name for _, name in table.systems]]
    lines = ["| " + " | ".join(_md(h) for h in heads) + " |", "|" + "|".join(["---"] + ["---:"] * len(table.systems)) + "|"]
    for row in table.rows:
        cells = [row.cells[s].text if s in row.cells else "" for s, _ in table.systems]
        lines.append("| " + " | ".join(_md(c) for c in [row.label, *cells]) + " |")
    lines.append("")
    lines += [f"{i}. {_md(note)}" for i, note in enumerate(table.footnotes, 1)]
    return "\n".join(lines) + "\n"


def long_table(table: Table2) -> pl.DataFrame:
    """One row per row_id x system that grades it; counts fill n, denominator and
    percent; medians fill n, median, min and max; courses and assessable rows n only."""
    records = []
    for row in table.rows:
        for system, _ in table.systems:
            cell = row.cells.get(system)
            if cell is None:
                continue
            records.append(
                {
                    "row_id": row.row_id,
                    "label": row.label,
                    "system": system,
                    "n": cell.n,
                    "denominator": cell.denominator,
                    "percent": percent_text(cell.percent) if cell.percent is not None else None,
                    "median": _number(cell.median),
                    "min": _number(cell.low),
                    "max": _number(cell.high),
                    "text": cell.text,
                }
            )
    schema = {c: pl.String for c in CSV_COLUMNS} | {"n": pl.Int64, "denominator": pl.Int64}
    return pl.DataFrame(records, schema=schema)


def _number(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def html(table: Table2) -> str:
    width = 1 + len(table.systems)
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in ["Characteristic", *[name for _, name in table.systems]])
    body = []
    for row in table.rows:
        cells = "".join(f"<td>{escape(row.cells[s].text) if s in row.cells else ''}</td>" for s, _ in table.systems)
        body.append(f'<tr id="{escape(row.row_id)}"><th scope="row">{escape(row.label)}</th>{cells}</tr>')
    notes = "".join(f"<li>{escape(note)}</li>" for note in table.footnotes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(CAPTION)}</title>\n"
        "<style>table{border-collapse:collapse;font-family:sans-serif}th,td{padding:2px 8px;text-align:left}"
        "td{text-align:right}thead th{border-bottom:1px solid #000}tfoot td{text-align:left;font-size:smaller}</style>\n"
        "</head>\n<body>\n<table>\n"
        f"<caption>{escape(CAPTION)}</caption>\n"
        f"<thead><tr>{head}</tr></thead>\n"
        "<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        f'<tfoot><tr><td colspan="{width}"><ol>{notes}</ol></td></tr></tfoot>\n'
        "</table>\n</body>\n</html>\n"
    )
