"""Reading tabular exports (CSV, Parquet, SAS XPT) into events, as a mapping
file says: long tables (a code column and a value column) and wide tables
(one column per value)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem, UsageError
from carscore.importer.events import conform, empty
from carscore.importer.mapping import Mapping, Table

SUFFIXES = (".csv", ".parquet", ".xpt", ".txt", ".tsv")
# results that state no value (de-identification masks, "unable to report"):
# skipped and counted, never an error (import.md §8)
NO_VALUE = re.compile(r"^(_+|unable to report|see comment|see note|cancelled|canceled|not reported|pending|\*+)$", re.I)
_BOUND = re.compile(r"^\s*([<>]=?)\s*([-+]?\d+(?:[.,]\d+)?)\s*$")
_FIRST_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_NOT_DETECTED = re.compile(r"^(not detected|undetectable|negative|neg)$", re.I)


@dataclass
class Read:
    events: pl.DataFrame
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    medications_read: bool = False


def find_files(paths: list[str]) -> dict[str, Path]:
    """Files by lower-case stem (clif_vitals.parquet -> clif_vitals), from files and folders."""
    found: dict[str, Path] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            candidates = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif path.is_file():
            candidates = [path]
        else:
            raise UsageError(f"{p}: no such file or folder")
        for f in candidates:
            found.setdefault(f.stem.lower(), f)
    return found


def read_text_table(path: Path) -> pl.DataFrame:
    """Every cell as text, with _line (the header is line 1)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
            frame = frame.with_columns(
                [
                    pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.f%:z" if getattr(t, "time_zone", None) else "%Y-%m-%dT%H:%M:%S%.f")
                    if isinstance(t, pl.Datetime)
                    else pl.col(c).cast(pl.String)
                    for c, t in frame.schema.items()
                ]
            )
        elif suffix == ".xpt":
            frame = _read_xpt(path)
        else:
            separator = "\t" if suffix == ".tsv" else ","
            frame = pl.read_csv(path.read_bytes(), infer_schema=False, separator=separator, truncate_ragged_lines=False)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - readers raise many kinds for malformed files
        raise UsageError(
            f"{path}: cannot be read ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
        ) from None
    return frame.with_row_index("_line", offset=2).with_columns(pl.col("_line").cast(pl.Int64))


def _read_xpt(path: Path) -> pl.DataFrame:
    try:
        import pyreadstat  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError(f"{path}: reading SAS transport files needs pyreadstat: pip install 'carscore[xpt]'") from None
    data, _ = pyreadstat.read_xport(str(path))
    return pl.from_pandas(data).with_columns(pl.all().cast(pl.String))


def _norm(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String).str.strip_chars().str.to_lowercase()


def _lookup(table: Table) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The table's codes as frames to join: one row per (code, target), and the
    word maps of targets that have one."""
    rows, words = [], []
    targets = [(code, m) for code, maps in table.codes.items() for m in maps]
    targets += [(name.lower(), m) for name, m in table.fields.items()]
    for i, (code, m) in enumerate(targets):
        rows.append(
            {
                "_code": code,
                "_target": i,
                "column": m.column,
                "_unit": m.unit,
                "agent": m.agent,
                "_first": m.first_number,
                "_where": ";".join(f"{k}={v}" for k, v in m.where.items()) or None,
            }
        )
        for word, value in m.values.items():
            words.append({"_target": i, "_word": word, "_mapped": value})
    codes = pl.DataFrame(
        rows,
        schema={
            "_code": pl.String,
            "_target": pl.Int64,
            "column": pl.String,
            "_unit": pl.String,
            "agent": pl.String,
            "_first": pl.Boolean,
            "_where": pl.String,
        },
    )
    word_map = pl.DataFrame(words, schema={"_target": pl.Int64, "_word": pl.String, "_mapped": pl.String})
    return codes, word_map


def _where_holds(frame: pl.DataFrame, codes: pl.DataFrame) -> pl.Expr:
    """A target's `where` (column=value;...; value may list alternatives a|b, or !a for 'not a')."""
    held = pl.col("_where").is_null()
    for spec in codes["_where"].drop_nulls().unique().to_list():
        cond = pl.lit(True)
        for part in spec.split(";"):
            name, _, want = part.partition("=")
            if name not in frame.columns:
                cond = pl.lit(False)
                continue
            negate = want.startswith("!")
            options = [w.strip().lower() for w in want.lstrip("!").split("|")]
            test = _norm(pl.col(name)).is_in(options).fill_null(False)
            cond = cond & (~test if negate else test)
        held = held | ((pl.col("_where") == spec) & cond)
    return held


def read_table(table: Table, path: Path, frame: pl.DataFrame, mapping: Mapping, contract: Contract, out: Read) -> pl.DataFrame:
    name = path.name
    missing = [
        c
        for c in [
            *table.time,
            table.code,
            table.unit,
            table.action,
            table.order,
            table.status,
            table.accepted,
            table.key,
            table.patient,
        ]
        if c and c not in frame.columns
    ]
    if missing:
        out.problems.append(InputProblem(name, f"the {table.name} table has no column {', '.join(missing)}", 1, missing[0]))
        return empty()
    total = frame.height
    # records that do not count: cancelled, entered in error, not accepted, superseded
    if table.status:
        status = _norm(pl.col(table.status))
        dropped = frame.filter(status.is_in([s.lower() for s in table.drop_status]))
        skipped = frame.filter(status.is_in([s.lower() for s in table.skip_status]))
        if dropped.height or skipped.height:
            out.notes.append(
                f"{name}: {dropped.height} records dropped ({', '.join(table.drop_status)}) and {skipped.height} skipped "
                f"({', '.join(table.skip_status)}) by their status"
            )
        frame = frame.filter(~status.is_in([s.lower() for s in table.drop_status + table.skip_status]).fill_null(True))
    if table.accepted:
        refused = frame.filter(_norm(pl.col(table.accepted)) == "n")
        if refused.height:
            out.notes.append(f"{name}: {refused.height} records not accepted ({table.accepted} = N) were skipped")
        frame = frame.filter((_norm(pl.col(table.accepted)) != "n").fill_null(True))
    if table.edit_link and table.line and table.edit_link in frame.columns and table.line in frame.columns:
        group = [table.group] if table.group and table.group in frame.columns else []
        edits = frame.filter(pl.col(table.edit_link).str.strip_chars() != "").select(
            *group, pl.col(table.edit_link).str.strip_chars().alias(table.line)
        )
        if edits.height:
            before = frame.height
            frame = frame.join(edits.unique(), on=[*group, table.line], how="anti")
            out.notes.append(f"{name}: {before - frame.height} records superseded by an edited line were dropped")
    # patient ids: given, or joined through the mapping's patients table by the caller
    if not table.key:
        frame = frame.with_columns(pl.col(table.patient).str.strip_chars().alias("patient_id"))  # type: ignore[arg-type]
    # timestamps: one column, or a date column and a time column
    stamp = pl.col(table.time[0]).str.strip_chars()
    if len(table.time) > 1:
        clock = pl.col(table.time[1]).str.strip_chars()
        stamp = pl.when(clock.is_not_null() & (clock != "")).then(pl.concat_str([stamp, pl.lit("T"), clock])).otherwise(stamp)
    naive = table.naive_time or mapping.naive_time
    frame = frame.with_columns(
        stamp=stamp, naive=pl.lit(naive), source=pl.concat_str([pl.lit(f"{name}:"), pl.col("_line").cast(pl.String)])
    )

    codes, word_map = _lookup(table)
    if table.fields:
        # wide form: each mapped column of the row is a value
        present = [f for f in table.fields if f in frame.columns]
        long = frame.unpivot(
            on=present, index=[c for c in frame.columns if c not in present], variable_name="_code", value_name="_value"
        )
        long = long.with_columns(_code=pl.col("_code").str.to_lowercase(), _unit_row=pl.lit(None, dtype=pl.String))
    else:
        values = [pl.col(v).str.strip_chars() for v in table.value if v in frame.columns]
        # an administration's value is the drug itself
        value = pl.coalesce([pl.when(v != "").then(v) for v in values]) if values else _norm(pl.col(table.code))  # type: ignore[arg-type]
        long = frame.with_columns(
            _code=_norm(pl.col(table.code)),  # type: ignore[arg-type]
            _value=value,
            _unit_row=pl.col(table.unit).str.strip_chars() if table.unit else pl.lit(None, dtype=pl.String),
        )
    matched = long.join(codes, on="_code", how="inner")
    unread = long.join(codes.select("_code").unique(), on="_code", how="anti").filter(
        ~pl.col("_code").is_in([c.lower() for c in table.ignore]) & pl.col("_code").is_not_null()
    )
    if unread.height and not table.fields:
        top = unread.group_by("_code").len().sort("len", descending=True).head(8)
        listed = ", ".join(f"{c} ({n})" for c, n in top.iter_rows())
        out.notes.append(f"{name}: {unread.height} records with codes this mapping does not read were skipped: {listed}")
    matched = matched.filter(_where_holds(matched, codes)).filter(pl.col("_value").is_not_null() & (pl.col("_value") != ""))
    matched = matched.with_columns(unit=pl.coalesce("_unit", "_unit_row"))
    events = _values(matched, word_map, table, contract, out)
    if table.kind in ("drip", "given"):
        out.medications_read = True
    out.notes.append(f"{name}: {total} records read as the {table.name} table, {events.height} values taken")
    return events


def _values(matched: pl.DataFrame, word_map: pl.DataFrame, table: Table, contract: Contract, out: Read) -> pl.DataFrame:
    """Contract values of the matched records: words through the maps, numbers
    parsed ("<5" is 5, the operator kept in the source), actions of drips."""
    matched = matched.join(
        word_map, left_on=["_target", pl.col("_value").str.to_lowercase()], right_on=["_target", "_word"], how="left"
    )
    has_map = pl.col("_target").is_in(word_map["_target"].unique().to_list())
    unmapped = matched.filter(has_map & pl.col("_mapped").is_null())
    for src, column, value in unmapped.select("source", "column", "_value").head(50).iter_rows():
        out.problems.append(
            _problem(src, f"'{value}' is not a value this mapping knows for {column}: map it or ignore it", column, value)
        )
    if unmapped.height > 50:
        out.problems.append(
            InputProblem(unmapped["source"][0].rsplit(":", 1)[0], f"... and {unmapped.height - 50} more unmapped values", 0)
        )
    if table.kind == "state":
        # an unreadable charting ends the state before it: the state is unknown from then on
        unreadable = has_map & pl.col("_mapped").is_null()
        matched = matched.with_columns(_value=pl.when(unreadable).then(None).otherwise(pl.col("_value")))
    else:
        matched = matched.filter(~has_map | pl.col("_mapped").is_not_null())
    administered = table.kind in ("drip", "given")
    numeric = pl.lit(not administered) & pl.col("column").is_in([n for n, c in contract.columns.items() if c.numeric])
    raw = pl.when(has_map).then(pl.col("_mapped")).otherwise(pl.col("_value"))
    first = pl.col("_first").fill_null(False)
    bound = raw.str.extract(_BOUND.pattern, 2).str.replace(",", ".")
    number_text = (
        pl.when(first)
        .then(raw.str.extract(r"([-+]?\d+(?:\.\d+)?)", 1))
        .when(bound.is_not_null())
        .then(bound)
        .when(raw.str.contains(_NOT_DETECTED.pattern))
        .then(pl.lit("0"))
        .otherwise(raw.str.replace(",", "."))
    )
    matched = matched.with_columns(
        number=pl.when(numeric).then(number_text.cast(pl.Float64, strict=False)),
        text=pl.when(~numeric).then(raw),
        _bound=raw.str.extract(_BOUND.pattern, 1),
        _nothing=raw.str.contains(NO_VALUE.pattern),
    )
    nothing = matched.filter(numeric & pl.col("_nothing"))
    if nothing.height:
        out.notes.append(f"{nothing['source'][0].rsplit(':', 1)[0]}: {nothing.height} results that state no value were skipped")
    bad = matched.filter(numeric & ~pl.col("_nothing") & (pl.col("number").is_null() | ~pl.col("number").is_finite()))
    for src, column, value in bad.select("source", "column", "_value").head(50).iter_rows():
        out.problems.append(_problem(src, f"is not a number for {column}", column, value))
    matched = matched.filter(~numeric | (pl.col("number").is_not_null() & pl.col("number").is_finite()))
    matched = matched.with_columns(
        source=pl.when(pl.col("_bound").is_not_null())
        .then(pl.concat_str([pl.col("source"), pl.lit(" ("), pl.col("_bound"), pl.lit(")")]))
        .otherwise(pl.col("source"))
    )
    kind = {"measure": "measure", "state": "state", "drip": "start", "given": "given"}[table.kind]
    matched = matched.with_columns(kind=pl.lit(kind))
    if table.kind in ("drip", "given"):
        action = _norm(pl.col(table.action)) if table.action else pl.lit(None, dtype=pl.String)
        mapped = (
            action.replace_strict(list(table.actions), list(table.actions.values()), default=None)
            if table.actions
            else pl.lit(None, dtype=pl.String)
        )
        default = "start" if table.kind == "drip" else "given"
        matched = matched.with_columns(_action=pl.when(action.is_null()).then(pl.lit(default)).otherwise(mapped))
        unknown = matched.filter(pl.col("_action").is_null())
        for src, value in unknown.select("source", table.action).head(20).iter_rows():  # type: ignore[arg-type]
            out.problems.append(
                _problem(
                    src, "an administration action this mapping does not know: map it in 'actions'", table.action or "", value
                )
            )
        matched = matched.filter(pl.col("_action").is_not_null() & (pl.col("_action") != "skip"))
        matched = matched.with_columns(
            kind=pl.col("_action"),
            agent=pl.coalesce("agent", pl.col("_code")),
            order_id=pl.col(table.order).cast(pl.String) if table.order else pl.lit(None, dtype=pl.String),
            text=pl.when(pl.col("_action") == "given").then(pl.lit("yes")).otherwise(pl.col("text")),
            number=pl.when(pl.col("_action") == "given").then(None).otherwise(pl.col("number")),
        )
    return conform(matched)


def _problem(source: str, message: str, column: str, value: object) -> InputProblem:
    from carscore.importer.rows import problem

    return problem(source, message, column, value)
