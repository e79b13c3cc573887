"""Administration records into events through the table's action column: a drip
starts and stops (a rate charted as 0 stops it), a single dose is given, and a
cancelled entry removes the order's other actions charted at that time."""

from __future__ import annotations

import polars as pl

from carscore.importer.cells import column_or_blank, norm
from carscore.importer.events import Read
from carscore.importer.mapping_tables import Table
from carscore.importer.rows import problem


def administration_events(matched: pl.DataFrame, table: Table, name: str, out: Read) -> pl.DataFrame:
    """Drips start and stop; single doses are given; the action column says which."""
    action = norm(pl.col(table.action)) if table.action and table.action in matched.columns else pl.lit(None, dtype=pl.String)
    mapped = (
        action.replace_strict(list(table.actions), list(table.actions.values()), default=None, return_dtype=pl.String)
        if table.actions
        else pl.lit(None, dtype=pl.String)
    )
    default = "start" if table.kind == "drip" else "given"
    matched = matched.with_columns(_action=pl.when(action.is_null() | (action == "")).then(pl.lit(default)).otherwise(mapped))
    if table.dose and table.dose in matched.columns and table.kind == "drip":
        # a rate charted as 0 stops the drip (import.md §2)
        zero = pl.col(table.dose).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False) == 0
        matched = matched.with_columns(
            _action=pl.when((pl.col("_action") == "start") & zero.fill_null(False))
            .then(pl.lit("stop"))
            .otherwise(pl.col("_action"))
        )
    unknown = matched.filter(pl.col("_action").is_null())
    for src, value in unknown.select("source", table.action).head(20).iter_rows():  # type: ignore[arg-type]
        out.problems.append(
            problem(src, "an administration action this mapping does not know: map it in 'actions'", table.action or "", value)
        )
    order = column_or_blank(matched, table.order) if table.order and not table.interval else pl.col("_rec")
    matched = matched.with_columns(order_id=order)
    # a cancelled entry removes the order's other actions at that time (Epic 'Canceled Entry')
    cancels = matched.filter(pl.col("_action") == "cancel")
    if cancels.height:
        key = ["patient_id", "_order_key", "stamp"]
        matched = matched.with_columns(_order_key=pl.coalesce("order_id", pl.lit("")))
        removed = cancels.with_columns(_order_key=pl.coalesce("order_id", pl.lit(""))).select(key).unique()
        others = matched.filter((pl.col("_action") != "cancel").fill_null(True))
        matched = others.join(removed, on=key, how="anti").drop("_order_key")
        removed_count = others.height - matched.height
        out.notes.append(f"{name}: {cancels.height} cancelled entries removed {removed_count} administrations charted with them")
    matched = matched.filter(pl.col("_action").is_not_null() & ~pl.col("_action").is_in(["skip", "cancel"]))
    return matched.with_columns(
        kind=pl.col("_action"),
        agent=pl.coalesce("agent", pl.col("_code")),
        text=pl.when(pl.col("_action") == "given").then(pl.lit("yes")).otherwise(pl.col("text")),
        number=pl.when(pl.col("_action") == "given").then(None).otherwise(pl.col("number")),
    )
