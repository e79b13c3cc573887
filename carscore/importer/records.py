"""Which records of a source table count: identical repeats are read once; records
outside the table's `where`, cancelled or entered in error (status), not accepted, or
superseded by an edited line are left out; each is counted in a note."""

from __future__ import annotations

import polars as pl

from carscore.importer.cells import column_or_blank, condition, filled, norm
from carscore.importer.events import Read
from carscore.importer.mapping_tables import Table


def records_that_count(table: Table, name: str, frame: pl.DataFrame, out: Read) -> pl.DataFrame:
    """Drop records that do not count: identical repeats, outside the table's
    `where`, cancelled or entered in error, not accepted, superseded by an edit."""
    before = frame.height
    frame = frame.unique([c for c in frame.columns if c != "_line"], keep="first", maintain_order=True)
    said = f"{name}: {before - frame.height} records identical to an earlier one were dropped"
    if frame.height < before and said not in out.notes:  # once per file, however many tables read it
        out.notes.append(said)
    if table.where:
        keep = pl.all_horizontal([condition(column_or_blank(frame, c), alt) for c, alt in table.where.items()])
        outside = frame.filter(~keep).height
        if outside:
            out.notes.append(f"{name}: {outside} records outside the {table.name} table's 'where' were left to other tables")
        frame = frame.filter(keep)
    if table.status and table.status in frame.columns:
        status = norm(pl.col(table.status))
        drop = [" ".join(s.split()).lower() for s in table.drop_status]
        skip = [" ".join(s.split()).lower() for s in table.skip_status]
        dropped = frame.filter(status.is_in(drop)).height
        skipped = frame.filter(status.is_in(skip)).height
        counts = ((dropped, "dropped", table.drop_status), (skipped, "skipped", table.skip_status))
        said = [f"{n} {how} ({', '.join(words)})" for n, how, words in counts if n]
        if said:
            out.notes.append(f"{name}: records left out by their {table.status}: {' and '.join(said)}")
        frame = frame.filter(~status.is_in(drop + skip).fill_null(False))
    if table.accepted and table.accepted in frame.columns:
        refused = frame.filter(norm(pl.col(table.accepted)) == "n")
        if refused.height:
            out.notes.append(f"{name}: {refused.height} records not accepted ({table.accepted} = N) were skipped")
        frame = frame.filter((norm(pl.col(table.accepted)) != "n").fill_null(True))
    if table.edit_link and table.line and table.edit_link in frame.columns and table.line in frame.columns:
        # Epic: EDITED_LINE = k on a line supersedes line k of the same FSD_ID (import.md §3)
        group = [table.group] if table.group and table.group in frame.columns else []
        line = pl.col(table.line).cast(pl.String).str.strip_chars()
        frame = frame.with_columns(_edit_key=line)
        edits = frame.filter(filled(pl.col(table.edit_link))).select(
            *group, pl.col(table.edit_link).cast(pl.String).str.strip_chars().alias("_edit_key")
        )
        if edits.height:
            before = frame.height
            frame = frame.join(edits.unique(), on=[*group, "_edit_key"], how="anti")
            out.notes.append(f"{name}: {before - frame.height} records superseded by an edited line were dropped")
        frame = frame.drop("_edit_key")
    return frame
