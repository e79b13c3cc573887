"""Reading tabular exports (CSV, Parquet, SAS XPT) into events, as a mapping
file says: long tables (a code column and a value column), wide tables (one
column per value, optionally decoded by a REDCap data dictionary) and
interval tables (a start and an end on each record). Every step is a polars
expression or join over the whole table; Python loops only over the
mapping's codes and a data dictionary's lines, never over records."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from carscore.contract import Contract
from carscore.errors import InputProblem, UsageError
from carscore.importer.clock import parse_timestamps
from carscore.importer.events import conform, empty
from carscore.importer.mapping import BLANK, CodeMap, Dictionary, Mapping, Table

SUFFIXES = (".csv", ".parquet", ".xpt", ".txt", ".tsv")
# results that state no value (de-identification masks, "unable to report"):
# skipped and counted, never an error (import.md §8)
NO_VALUE = re.compile(r"(?i)^\s*(_+|unable to report|see comment|see note|cancelled|canceled|not reported|pending|\*+)\s*$")
_BOUND = re.compile(r"^\s*([<>]=?)\s*([-+]?\d+(?:[.,]\d+)?)\s*$")
# MRD and CAR copies below detection are 0 (import.md §3)
_NOT_DETECTED = re.compile(r"(?i)^\s*(not detected|undetectable|negative|neg)\s*$")
_CHECKBOX = re.compile(r"^(.+?)___([^_].*)$")
_CHOICE_HEADER = re.compile(r"^(.*)\(choice=(.*)\)\s*$", re.S)
# contract columns that identify a row rather than hold an observation
IDENTITY = ("patient_id", "infusion", "day", "time", "age_years", "source")
# how the contract writes its booleans (contract §1)
_YES, _NO = ("yes", "y", "true", "1"), ("no", "n", "false", "0")
_CHECKED = ("1", "checked", "yes", "true")
_SKIP = "\x00skip"  # a source word the mapping maps to no value
# the longest run of days an administration interval is spread over (a corticosteroid course
# is days to weeks; a year is a typing error in the end date)
MAX_GIVEN_DAYS = 366


@dataclass
class Read:
    events: pl.DataFrame
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    medications_read: bool = False
    # state columns a complete interval source covers, and their value where no interval runs
    # (SDTM PR: o2_device none); the rows' builder applies it (see outside_values)
    outside: dict[str, str] = field(default_factory=dict)


class Sources(dict):  # type: ignore[type-arg]
    """Files by lower-case stem. A stem asked for may hold * and ? (REDCap
    names its exports <PROJECT>_DATA_<date>_<time>.csv): the first file in
    name order that fits."""

    def find(self, stem: str) -> Path | None:
        wanted = stem.lower()
        if "*" in wanted or "?" in wanted:
            return next((dict.__getitem__(self, s) for s in sorted(self) if fnmatch.fnmatchcase(s, wanted)), None)
        return dict.get(self, wanted)

    def __contains__(self, stem: object) -> bool:
        return isinstance(stem, str) and self.find(stem) is not None

    def __getitem__(self, stem: str) -> Path:
        found = self.find(stem)
        if found is None:
            raise KeyError(stem)
        return found


def find_files(paths: list[str]) -> Sources:
    """Files by lower-case stem (clif_vitals.parquet -> clif_vitals), from files and folders."""
    found = Sources()
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
    """Every cell as text, with _line: the line in a text file (the header is
    line 1), the record number in a SAS transport file."""
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
    # a text file's line (the header is line 1); a SAS transport file's record number
    first = 1 if suffix == ".xpt" else 2
    return frame.with_row_index("_line", offset=first).with_columns(pl.col("_line").cast(pl.Int64))


def _read_xpt(path: Path) -> pl.DataFrame:
    try:
        import pyreadstat  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError(f"{path}: reading SAS transport files needs pyreadstat: pip install 'carscore[xpt]'") from None
    try:
        frame, _ = pyreadstat.read_xport(str(path), output_format="polars")
    except TypeError:  # pyreadstat before 1.3 gives pandas only
        data, _ = pyreadstat.read_xport(str(path))
        frame = pl.DataFrame([pl.Series(str(c), data[c].to_numpy()) for c in data.columns])
    # SAS numbers are doubles: 120 comes back as 120.0, a missing value as NaN
    return frame.with_columns(
        [
            pl.col(c).fill_nan(None).cast(pl.String).str.replace(r"\.0$", "") if t.is_float() else pl.col(c).cast(pl.String)
            for c, t in frame.schema.items()
        ]
    )


def _norm(e: pl.Expr) -> pl.Expr:
    """A cell as codes and words are compared: trimmed, lower case, inner spaces single."""
    return e.cast(pl.String).str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", " ")


def _filled(e: pl.Expr) -> pl.Expr:
    return e.is_not_null() & (e.cast(pl.String).str.strip_chars() != "")


def _bare(e: pl.Expr) -> pl.Expr:
    """A word as the contract compares enum words: letters and digits only."""
    return e.str.to_lowercase().str.replace(r"\.0+$", "").str.replace_all(r"[^a-z0-9]", "")


def _condition(cell: pl.Expr, alternatives: tuple[str, ...]) -> pl.Expr:
    """Whether a cell meets a `where` condition (mapping.py: words, (blank), ~words, !)."""
    cell = _norm(cell)
    blank = cell.is_null() | (cell == "")

    def test(alternative: str) -> pl.Expr:
        if alternative == BLANK:
            return blank
        if alternative.startswith("~"):
            return cell.str.contains(rf"\b{re.escape(alternative[1:].strip())}\b").fill_null(False)
        return (cell == alternative).fill_null(False)

    wanted = [test(a) for a in alternatives if not a.startswith("!")]
    refused = [test(a[1:]) for a in alternatives if a.startswith("!")]
    held = pl.any_horizontal(wanted) if wanted else pl.lit(True)
    return held & ~pl.any_horizontal(refused) if refused else held


def _column_or_blank(frame: pl.DataFrame, name: str | None) -> pl.Expr:
    """A source column as text; blank when the table lacks it. A wide table's
    value column read by a `where` or `from` is kept beside the values as _keep:<name>."""
    if name and f"_keep:{name}" in frame.columns:
        return pl.col(f"_keep:{name}")
    if name and name in frame.columns:
        return pl.col(name).cast(pl.String).str.strip_chars()
    return pl.lit(None, dtype=pl.String)


def _fold(e: pl.Expr) -> pl.Expr:
    """A code as exact matching compares it: spaces, hyphens and underscores alike
    (CLIF "ICE Score" is ice_score; SDTM "NON-REBREATHER MASK")."""
    return e.str.replace_all(r"[\s\-_]+", "_")


def _folded(keys: list[str]) -> dict[str, str]:
    folded: dict[str, str] = {}
    for k in keys:
        folded.setdefault(re.sub(r"[\s\-_]+", "_", k.strip().lower()), k)
    return folded


def _code_matches(text: pl.Expr, keys: list[str], match: str) -> pl.Expr:
    """The code of each record: the key the cell is, or the first key whose words it holds."""
    if not keys:
        return pl.lit(None, dtype=pl.String)
    if match == "exact":
        return _fold(text).replace_strict(_folded(keys), default=None, return_dtype=pl.String)
    return pl.coalesce([pl.when(text.str.contains(rf"\b{re.escape(k)}\b")).then(pl.lit(k)) for k in keys])


def _reads(text: pl.Expr, keys: list[str], match: str) -> pl.Expr:
    """Whether a code cell is one of these codes (or, by words, holds one)."""
    return _code_matches(text, keys, match).is_not_null()


def _lookup(targets: list[tuple[str, CodeMap]], table: Table, contract: Contract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The targets as frames to join: one row per (code, target), and the
    word maps of the targets that have one."""
    rows, words = [], []
    default_kind = table.kind if table.kind in ("measure", "state") else "measure"
    for i, (code, m) in enumerate(targets):
        column = contract.columns.get(m.column)
        rows.append(
            {
                "_code": code,
                "_target": i,
                "column": m.column,
                "_ckind": column.kind if column else "text",
                "_kind": m.kind or default_kind,
                "_unit": m.unit,
                "agent": m.agent,
                "_first": m.first_number,
            }
        )
        for word, value in m.values.items():
            folded = re.sub(r"[\s\-_]+", "_", word)
            words.append({"_target": i, "_word": folded, "_mapped": _SKIP if value is None else value})
    codes = pl.DataFrame(
        rows,
        schema={
            "_code": pl.String,
            "_target": pl.Int64,
            "column": pl.String,
            "_ckind": pl.String,
            "_kind": pl.String,
            "_unit": pl.String,
            "agent": pl.String,
            "_first": pl.Boolean,
        },
    )
    word_map = pl.DataFrame(words, schema={"_target": pl.Int64, "_word": pl.String, "_mapped": pl.String})
    return codes, word_map


def _by_target(targets: list[tuple[str, CodeMap]], pick, otherwise: pl.Expr) -> pl.Expr:  # type: ignore[no-untyped-def]
    """An expression that is ``pick(target)`` on the rows of each target where
    that gives one, else ``otherwise``."""
    chosen = [(i, e) for i, (_, m) in enumerate(targets) if (e := pick(m)) is not None]
    if not chosen:
        return otherwise
    expr = pl.when(pl.col("_target") == chosen[0][0]).then(chosen[0][1])
    for i, e in chosen[1:]:
        expr = expr.when(pl.col("_target") == i).then(e)
    return expr.otherwise(otherwise)


def _siblings(table: Table, mapping: Mapping) -> list[Table]:
    """The tables reading the same files (SDTM CM: drips, administrations, oxygen)."""
    mine = {f.lower() for f in table.files}
    return [t for t in mapping.tables.values() if {f.lower() for f in t.files} & mine]


# --- data dictionaries (REDCap) --------------------------------------------------------


def _find_beside(path: Path, stems: list[str]) -> Path | None:
    beside = Sources()
    for f in sorted(path.parent.iterdir()):
        if f.is_file() and f.suffix.lower() in SUFFIXES and f != path:
            beside.setdefault(f.stem.lower(), f)
    return next((beside[s] for s in stems if s in beside), None)


def _choices(path: Path, spec: Dictionary, out: Read) -> tuple[pl.DataFrame, dict[str, str], set[str]]:
    """(field, code, label) of every choice; field labels -> names; checkbox fields.
    A dictionary is metadata, a few hundred rows: read line by line."""
    frame = read_text_table(path)
    missing = [c for c in (spec.field, spec.choices) if c not in frame.columns]
    if missing:
        out.problems.append(InputProblem(path.name, f"the data dictionary has no column {', '.join(missing)}", 1, missing[0]))
        return pl.DataFrame(schema={"_code": pl.String, "_key": pl.String, "_label": pl.String}), {}, set()
    rows, labels, checkboxes = [], {}, set()
    for record in frame.iter_rows(named=True):
        name = (record.get(spec.field) or "").strip().lower()
        kind = (record.get(spec.type) or "").strip().lower()
        if not name:
            continue
        label = " ".join((record.get(spec.label) or "").split())
        if label:
            labels.setdefault(label.lower(), name)
        if kind == "checkbox":
            checkboxes.add(name)
        if kind not in ("radio", "dropdown", "checkbox"):
            continue
        for choice in re.split(r"\s*\|\s*|\n", record.get(spec.choices) or ""):
            code, comma, text = choice.partition(",")
            if comma and code.strip():
                rows.append({"_code": name, "_key": code.strip().lower(), "_label": text.strip()})
    table = pl.DataFrame(rows, schema={"_code": pl.String, "_key": pl.String, "_label": pl.String})
    return table.unique(["_code", "_key"], keep="first"), labels, checkboxes


def _rename_labelled(frame: pl.DataFrame, labels: dict[str, str], choices: pl.DataFrame) -> pl.DataFrame:
    """Headers exported as field labels ("Temperature (C)", "Treatment (choice=Tocilizumab)")
    back to field names."""
    by_label = {(f, lab.lower()): k for f, k, lab in choices.iter_rows()}
    renames = {}
    taken = {c.lower() for c in frame.columns}
    for column in frame.columns:
        text = " ".join(column.split())
        checkbox = _CHOICE_HEADER.match(text)
        if checkbox:
            name = labels.get(" ".join(checkbox.group(1).split()).lower())
            code = by_label.get((name, checkbox.group(2).strip().lower())) if name else None
            new = f"{name}___{code}" if name and code else None
        else:
            new = labels.get(text.lower())
        if new and new not in taken and column.lower() not in labels.values():
            renames[column] = new
            taken.add(new)
    return frame.rename(renames) if renames else frame


# --- reading one table --------------------------------------------------------------


def read_table(table: Table, path: Path, frame: pl.DataFrame, mapping: Mapping, contract: Contract, out: Read) -> pl.DataFrame:
    name = path.name
    choices = None
    checkbox_fields: set[str] = set()
    if table.dictionary is not None:
        found = _find_beside(path, table.dictionary.files)
        if found is None:
            out.problems.append(
                InputProblem(
                    name,
                    f"no data dictionary beside it (looked for {', '.join(table.dictionary.files)}): "
                    "choice codes are read as written",
                    0,
                )
            )
        else:
            choices, labels, checkbox_fields = _choices(found, table.dictionary, out)
            frame = _rename_labelled(frame, labels, choices)
    required = [*table.time[:1], *table.interval, table.key, table.patient]
    if table.actions:
        required.append(table.action)
    missing = [c for c in required if c and c not in frame.columns]
    for wanted in (table.code, [] if table.fields or table.contract_fields else table.value):
        if wanted and not any(c in frame.columns for c in wanted):
            missing.append(" or ".join(wanted))
    if missing:
        out.problems.append(InputProblem(name, f"the {table.name} table has no column {', '.join(missing)}", 1, missing[0]))
        return empty()
    total = frame.height
    given = [c for c in frame.columns if c != "_line"]  # the source's own columns
    frame = _records_that_count(table, name, frame, out)

    # patient ids: given, or joined through the mapping's patients table by the caller
    if not table.key:
        frame = frame.with_columns(pl.col(table.patient).str.strip_chars().alias("patient_id"))  # type: ignore[arg-type]
    # timestamps: one column, or a date column and a time column
    stamp = pl.col(table.time[0]).str.strip_chars()
    if len(table.time) > 1 and table.time[1] in frame.columns:
        clock = pl.col(table.time[1]).str.strip_chars()
        stamp = pl.when(_filled(clock)).then(pl.concat_str([stamp, pl.lit("T"), clock])).otherwise(stamp)
    naive = table.naive_time or mapping.naive_time
    source = pl.concat_str([pl.lit(f"{name}:"), pl.col("_line").cast(pl.String)])
    frame = frame.with_columns(
        stamp=stamp,
        naive=pl.lit(naive),
        source=source,
        _rec=source,
        _end_stamp=pl.when(_filled(pl.col(table.interval[1]))).then(pl.col(table.interval[1]).str.strip_chars())
        if table.interval
        else pl.lit(None, dtype=pl.String),
    )

    if table.fields or table.contract_fields:
        targets, long = _wide(table, frame, given, contract, checkbox_fields)
    else:
        targets, long = _long(table, frame, mapping, name, out)
    codes, word_map = _lookup(targets, table, contract)
    matched = long.join(codes, on="_code", how="inner")
    # a target's qualifiers (specimen, indication ...): records no target of their code takes are counted
    where = _by_target(
        targets,
        lambda m: (
            pl.all_horizontal([_condition(_column_or_blank(long, c), alt) for c, alt in m.where.items()]) if m.where else None
        ),
        pl.lit(True),
    )
    matched = matched.with_columns(_holds=where)
    kept = matched.filter(pl.col("_holds"))
    left_out = matched.select("_rec").unique().join(kept.select("_rec").unique(), on="_rec", how="anti")
    if left_out.height:
        out.notes.append(
            f"{name}: {left_out.height} records of codes this mapping reads were skipped: their qualifiers "
            f"(specimen, indication ...) fit no target (first: {left_out['_rec'][0]})"
        )
    matched = kept
    # values read from another column of the record, or set by the mapping
    matched = matched.with_columns(
        _value=_by_target(
            targets,
            lambda m: (
                pl.lit(m.set_value)
                if m.set_value is not None
                else (_column_or_blank(long, m.from_column) if m.from_column else None)
            ),
            pl.col("_value"),
        )
    )
    if table.fields or table.contract_fields:
        matched = _decoded(matched, choices)
    if table.split:
        matched = matched.with_columns(pl.col("_value").str.split(table.split)).explode("_value")
        matched = matched.with_columns(pl.col("_value").str.strip_chars())
    matched = matched.filter(_filled(pl.col("_value")))
    matched = matched.with_columns(unit=pl.coalesce("_unit", "_unit_row"))
    events = _values(matched, word_map, targets, table, contract, name, out)
    if table.interval:
        events = _intervals(events, table, name, out)
    events = conform(events)
    if table.kind in ("drip", "given"):
        out.medications_read = True
    if events.height:
        # an interval source says "none" outside its intervals only once it holds one
        out.outside.update(table.outside)
    out.notes.append(f"{name}: {total} records read as the {table.name} table, {events.height} values taken")
    return events


def _records_that_count(table: Table, name: str, frame: pl.DataFrame, out: Read) -> pl.DataFrame:
    """Drop records that do not count: identical repeats, outside the table's
    `where`, cancelled or entered in error, not accepted, superseded by an edit."""
    before = frame.height
    frame = frame.unique([c for c in frame.columns if c != "_line"], keep="first", maintain_order=True)
    said = f"{name}: {before - frame.height} records identical to an earlier one were dropped"
    if frame.height < before and said not in out.notes:  # once per file, however many tables read it
        out.notes.append(said)
    if table.where:
        keep = pl.all_horizontal([_condition(_column_or_blank(frame, c), alt) for c, alt in table.where.items()])
        outside = frame.filter(~keep).height
        if outside:
            out.notes.append(f"{name}: {outside} records outside the {table.name} table's 'where' were left to other tables")
        frame = frame.filter(keep)
    if table.status and table.status in frame.columns:
        status = _norm(pl.col(table.status))
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
        refused = frame.filter(_norm(pl.col(table.accepted)) == "n")
        if refused.height:
            out.notes.append(f"{name}: {refused.height} records not accepted ({table.accepted} = N) were skipped")
        frame = frame.filter((_norm(pl.col(table.accepted)) != "n").fill_null(True))
    if table.edit_link and table.line and table.edit_link in frame.columns and table.line in frame.columns:
        # Epic: EDITED_LINE = k on a line supersedes line k of the same FSD_ID (import.md §3)
        group = [table.group] if table.group and table.group in frame.columns else []
        line = pl.col(table.line).cast(pl.String).str.strip_chars()
        frame = frame.with_columns(_edit_key=line)
        edits = frame.filter(_filled(pl.col(table.edit_link))).select(
            *group, pl.col(table.edit_link).cast(pl.String).str.strip_chars().alias("_edit_key")
        )
        if edits.height:
            before = frame.height
            frame = frame.join(edits.unique(), on=[*group, "_edit_key"], how="anti")
            out.notes.append(f"{name}: {before - frame.height} records superseded by an edited line were dropped")
        frame = frame.drop("_edit_key")
    return frame


def _long(
    table: Table, frame: pl.DataFrame, mapping: Mapping, name: str, out: Read
) -> tuple[list[tuple[str, CodeMap]], pl.DataFrame]:
    """A code column and a value column: one record, one value."""
    targets = [(code, m) for code, maps in table.codes.items() for m in maps]
    present = [c for c in table.code if c in frame.columns]
    text = pl.coalesce([pl.when(_filled(pl.col(c))).then(_norm(pl.col(c))) for c in present])
    values = [(i, c) for i, c in enumerate(table.value) if c in frame.columns]
    numeric_sentinels = [float(s) for s in table.sentinels if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", s.strip())]

    def usable(column: str) -> pl.Expr:
        cell = pl.col(column).cast(pl.String).str.strip_chars()
        ok = _filled(cell)
        if table.sentinels:
            ok = ok & ~cell.is_in([s.strip() for s in table.sentinels]).fill_null(False)
        if numeric_sentinels:
            ok = ok & ~cell.cast(pl.Float64, strict=False).is_in(numeric_sentinels).fill_null(False)
        return ok

    if values:
        # the first usable value column, and the unit that goes with it
        picked = pl.coalesce([pl.when(usable(c)).then(pl.lit(i)) for i, c in values])
        value = pl.coalesce([pl.when(usable(c)).then(pl.col(c).cast(pl.String).str.strip_chars()) for _, c in values])
        if len(table.unit) > 1:
            unit = pl.lit(None, dtype=pl.String)
            for i, _ in values:
                unit = pl.when(picked == i).then(_column_or_blank(frame, table.unit[i])).otherwise(unit)
        else:
            unit = _column_or_blank(frame, table.unit[0] if table.unit else None)
    else:
        # an administration's or a procedure's value is the code itself
        value = text
        unit = _column_or_blank(frame, table.unit[0] if table.unit else None)
    keys = list(table.codes)
    long = frame.with_columns(_text=text, _value=value, _unit_row=unit, _choice=pl.lit(None, dtype=pl.String))
    # codes are matched once per distinct code text (a few thousand drug names, not millions of rows)
    known = pl.lit(False)
    for t in _siblings(table, mapping):
        # codes no table on this file reads (another LOINC, heart rate): skipped, counted
        known = known | _reads(pl.col("_text"), list(t.codes), t.match)
        known = known | _reads(pl.col("_text"), [" ".join(c.split()).lower() for c in t.ignore], t.match)
    texts = long.select(pl.col("_text").drop_nulls().unique())
    texts = texts.with_columns(_code=_code_matches(pl.col("_text"), keys, table.match), _known=known.fill_null(False))
    long = long.join(texts, on="_text", how="left")
    unread = long.filter(pl.col("_text").is_not_null() & ~pl.col("_known"))
    if table.strict is not None and unread.height:
        # a code of a category the mapping reads (an ICANS score, an oxygen term): an error until mapped
        strict = (
            pl.all_horizontal([_condition(_column_or_blank(frame, c), alt) for c, alt in table.strict.items()])
            if table.strict
            else pl.lit(True)
        )
        refused = unread.filter(strict)
        unread = unread.filter(~strict)
        column = " or ".join(present)
        for src, value in refused.select("source", pl.coalesce([pl.col(c) for c in present])).head(50).iter_rows():
            out.problems.append(_problem(src, "a code this mapping does not know: map it or ignore it", column, value))
        if refused.height > 50:
            out.problems.append(InputProblem(name, f"... and {refused.height - 50} more codes this mapping does not know", 0))
    if unread.height:
        top = unread.group_by("_text").len().sort(["len", "_text"], descending=[True, False]).head(8)
        listed = ", ".join(f"{c} ({n})" for c, n in top.iter_rows())
        out.notes.append(f"{name}: {unread.height} records with codes this mapping does not read were skipped: {listed}")
    return targets, long


def _wide(
    table: Table, frame: pl.DataFrame, given: list[str], contract: Contract, checkbox_fields: set[str]
) -> tuple[list[tuple[str, CodeMap]], pl.DataFrame]:
    """One column per value: the mapped fields, the columns named as contract
    columns, and the checkbox columns var___k of either."""
    fields = {k.lower(): m for k, m in table.fields.items()}
    by_lower = {c.lower(): c for c in given}
    own = {c.lower() for c in (table.patient, table.key, *table.time, *table.interval) if c}
    if table.contract_fields:
        for lower in by_lower:
            if lower in contract.columns and lower not in IDENTITY and lower not in fields and lower not in own:
                fields[lower] = CodeMap(lower)
    plain = [by_lower[f] for f in fields if f in by_lower]
    # checkbox columns var___k: of a checkbox field of the dictionary, or (without one) of a mapped field
    boxes = {}
    for lower, column in by_lower.items():
        hit = _CHECKBOX.match(lower)
        if not hit:
            continue
        box_field, choice = hit.group(1), hit.group(2)
        if table.contract_fields and box_field in contract.columns and box_field not in IDENTITY:
            fields.setdefault(box_field, CodeMap(box_field))
        if (lower not in fields and box_field not in fields) or (checkbox_fields and box_field not in checkbox_fields):
            continue
        boxes[column] = (lower if lower in fields else box_field, box_field, choice)
    plain = [c for c in plain if c not in boxes]
    read = plain + list(boxes)
    # a value column that a `where` or `from` reads stays beside the values
    wanted = {c for _, m in fields.items() for c in [*m.where, m.from_column] if c}
    kept = [pl.col(c).cast(pl.String).str.strip_chars().alias(f"_keep:{c}") for c in read if c in wanted]
    frame = frame.with_columns(kept) if kept else frame
    index = [c for c in frame.columns if c not in read]
    long = frame.select(*index, *[pl.col(c).cast(pl.String) for c in read]).unpivot(
        on=read, index=index, variable_name="_column", value_name="_value"
    )
    lowered = pl.col("_column").str.to_lowercase()
    code = pl.col("_column").replace_strict({c: t for c, (t, _, _) in boxes.items()}, default=lowered)
    box_field = pl.col("_column").replace_strict({c: f for c, (_, f, _) in boxes.items()}, default=lowered)
    choice = pl.col("_column").replace_strict({c: k for c, (_, _, k) in boxes.items()}, default=None, return_dtype=pl.String)
    long = long.with_columns(
        _code=code,
        _field=box_field,
        _choice=choice,
        _value=pl.col("_value").cast(pl.String).str.strip_chars(),
        _unit_row=pl.lit(None, dtype=pl.String),
        _text=code,
    )
    return list(fields.items()), long


def _decoded(matched: pl.DataFrame, choices: pl.DataFrame | None) -> pl.DataFrame:
    """Choice codes to their labels through the data dictionary; a checkbox
    column is its choice when checked (yes for a yes/no column), nothing when not."""
    checkbox = pl.col("_choice").is_not_null()
    if choices is None:
        matched = matched.with_columns(_label=pl.lit(None, dtype=pl.String), _off_dictionary=pl.lit(False))
    else:
        key = pl.coalesce(pl.col("_choice"), pl.col("_value")).str.strip_chars().str.to_lowercase()
        with_choices = choices["_code"].unique().to_list()
        matched = matched.with_columns(_key=key).join(choices.rename({"_code": "_field"}), on=["_field", "_key"], how="left")
        matched = matched.with_columns(
            _off_dictionary=~checkbox & pl.col("_field").is_in(with_choices) & pl.col("_label").is_null()
        ).drop("_key")
    checked = _norm(pl.col("_value")).str.replace(r"\.0+$", "").is_in(_CHECKED)
    return matched.with_columns(
        _value=pl.when(checkbox)
        .then(
            pl.when(~checked.fill_null(False))
            .then(None)
            .when(pl.col("_ckind").is_in(["boolean", "dose"]))
            .then(pl.lit("yes"))
            .otherwise(pl.coalesce("_label", "_choice"))
        )
        .otherwise(pl.coalesce("_label", "_value"))
    ).drop("_label")


# --- values ------------------------------------------------------------------------


def _contract_words(contract: Contract) -> pl.DataFrame:
    """(column, bare word, contract value) for every enum, boolean and dose column."""
    rows = []
    for name, column in contract.columns.items():
        if column.kind == "enum":
            rows += [(name, re.sub(r"[^a-z0-9]", "", v.lower()), v) for v in column.values]
        elif column.kind in ("boolean", "dose"):
            rows += [(name, w, "yes") for w in _YES] + [(name, w, "no") for w in _NO]
    return pl.DataFrame(rows, schema={"column": pl.String, "_bare": pl.String, "_cword": pl.String}, orient="row")


def _ranged(targets: list[tuple[str, CodeMap]], raw: pl.Expr) -> pl.Expr:
    """The value a number takes through the `values` keys "> x", "<= x" ..."""
    number = raw.str.replace(",", ".").cast(pl.Float64, strict=False)
    tests = {">": number.__gt__, ">=": number.__ge__, "<": number.__lt__, "<=": number.__le__, "=": number.__eq__}
    expr = None
    for i, (_, m) in enumerate(targets):
        for op, bound, value in m.ranges:
            cond = (pl.col("_target") == i) & tests[op](bound)
            then = pl.lit(_SKIP if value is None else value)
            expr = pl.when(cond).then(then) if expr is None else expr.when(cond).then(then)
    return pl.lit(None, dtype=pl.String) if expr is None else expr.otherwise(pl.lit(None, dtype=pl.String))


def _values(
    matched: pl.DataFrame,
    word_map: pl.DataFrame,
    targets: list[tuple[str, CodeMap]],
    table: Table,
    contract: Contract,
    name: str,
    out: Read,
) -> pl.DataFrame:
    """Contract values of the matched records: words through the maps, then as
    the contract writes them; numbers parsed ("<5" is 5, the operator kept in
    the source); actions of drips."""
    administered = table.kind in ("drip", "given")
    word_map = word_map.unique(["_target", "_word"], keep="first", maintain_order=True)
    matched = matched.join(
        word_map, left_on=["_target", _fold(_norm(pl.col("_value")))], right_on=["_target", "_word"], how="left"
    )
    matched = matched.with_columns(_mapped=pl.coalesce("_mapped", _ranged(targets, pl.col("_value"))))
    skipped = matched.filter(pl.col("_mapped") == _SKIP).height
    matched = matched.filter((pl.col("_mapped") != _SKIP).fill_null(True))
    if skipped:
        out.notes.append(f"{name}: {skipped} values the mapping reads as no value were skipped")
    raw = pl.coalesce("_mapped", "_value")
    numeric = pl.lit(not administered) & pl.col("_ckind").is_in(["integer", "number"])
    worded = pl.lit(not administered) & pl.col("_ckind").is_in(["enum", "boolean", "dose"])
    matched = matched.with_columns(_raw=raw, _nothing=raw.str.contains(NO_VALUE.pattern) & pl.lit(not administered))
    nothing = matched.filter(pl.col("_nothing"))
    if nothing.height:
        out.notes.append(f"{name}: {nothing.height} results that state no value were skipped")
    matched = matched.filter(~pl.col("_nothing"))

    # words as the contract writes them: "Awakens to voice" is awakens_to_voice, Y is yes
    matched = matched.with_columns(_bare=_bare(pl.col("_raw"))).join(
        _contract_words(contract), on=["column", "_bare"], how="left"
    )
    dose_number = (pl.col("_ckind") == "dose") & pl.col("_raw").cast(pl.Float64, strict=False).is_not_null()
    unreadable = worded & pl.col("_cword").is_null() & ~dose_number
    bad_words = matched.filter(unreadable)
    off = pl.col("_off_dictionary") if "_off_dictionary" in matched.columns else pl.lit(False)
    for src, column, value, outside in bad_words.select("source", "column", "_value", off.fill_null(False)).head(50).iter_rows():
        said = "is not among the data dictionary's choices for" if outside else "is not a value this mapping knows for"
        out.problems.append(_problem(src, f"'{value}' {said} {column}: map it or ignore it", column, value))
    if bad_words.height > 50:
        out.problems.append(InputProblem(name, f"... and {bad_words.height - 50} more values no map knows", 0))
    # an unreadable charting ends the state before it: the state is unknown from then on
    is_state = pl.col("_kind") == "state"
    matched = matched.filter(~unreadable | is_state).with_columns(
        _raw=pl.when(unreadable)
        .then(None)
        .when(worded & pl.col("_cword").is_not_null())
        .then(pl.col("_cword"))
        .otherwise(pl.col("_raw"))
    )

    first = pl.col("_first").fill_null(False)
    text = pl.col("_raw")
    bound = text.str.extract(_BOUND.pattern, 2).str.replace(",", ".")
    number_text = (
        pl.when(first)
        .then(text.str.extract(r"([-+]?\d+(?:\.\d+)?)", 1))
        .when(bound.is_not_null())
        .then(bound)
        .when(text.str.contains(_NOT_DETECTED.pattern))
        .then(pl.lit("0"))
        .otherwise(text.str.replace(",", "."))
    )
    matched = matched.with_columns(
        number=pl.when(numeric).then(number_text.cast(pl.Float64, strict=False)),
        text=pl.when(~numeric).then(text),
        _bound=pl.when(~first).then(text.str.extract(_BOUND.pattern, 1)),
    )
    bad = matched.filter(numeric & (pl.col("number").is_null() | ~pl.col("number").is_finite()))
    for src, column, value in bad.select("source", "column", "_value").head(50).iter_rows():
        out.problems.append(_problem(src, f"is not a number for {column}", column, value))
    if bad.height > 50:
        out.problems.append(InputProblem(name, f"... and {bad.height - 50} more values that are not numbers", 0))
    matched = matched.filter(~numeric | (pl.col("number").is_not_null() & pl.col("number").is_finite()))
    matched = matched.with_columns(
        source=pl.when(pl.col("_bound").is_not_null())
        .then(pl.concat_str([pl.col("source"), pl.lit(" ("), pl.col("_bound"), pl.lit(")")]))
        .otherwise(pl.col("source"))
    )
    if not administered:
        return matched.with_columns(kind=pl.col("_kind"))
    return _administrations(matched, table, name, out)


def _administrations(matched: pl.DataFrame, table: Table, name: str, out: Read) -> pl.DataFrame:
    """Drips start and stop; single doses are given; the action column says which."""
    action = _norm(pl.col(table.action)) if table.action and table.action in matched.columns else pl.lit(None, dtype=pl.String)
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
            _problem(src, "an administration action this mapping does not know: map it in 'actions'", table.action or "", value)
        )
    order = _column_or_blank(matched, table.order) if table.order and not table.interval else pl.col("_rec")
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


# --- intervals ---------------------------------------------------------------------


def _instant(stamp: pl.Expr) -> pl.Expr:
    """A comparable instant of a stamp (the written clock, less its offset if any)."""
    parsed = parse_timestamps(stamp)
    return parsed["naive"].dt.epoch("us") - parsed["offset_min"].fill_null(0).cast(pl.Int64) * 60_000_000


def _intervals(events: pl.DataFrame, table: Table, name: str, out: Read) -> pl.DataFrame:
    """Records that run from a start to an end (SDTM CM and PR, FHIR periods)."""
    events = events.with_columns(_t0=_instant(pl.col("stamp")), _t1=_instant(pl.col("_end_stamp")))
    backwards = events.filter(pl.col("_t1") < pl.col("_t0")).unique("_rec", keep="first")
    for src, end in backwards.select("_rec", "_end_stamp").head(50).iter_rows():
        out.problems.append(_problem(src, f"ends ({end}) before it starts: read from its start only", table.interval[1], end))
    events = events.with_columns(
        _end_stamp=pl.when(pl.col("_t1") >= pl.col("_t0")).then(pl.col("_end_stamp")),
        _t1=pl.when(pl.col("_t1") >= pl.col("_t0")).then(pl.col("_t1")),
    )
    if table.kind == "drip":
        stops = events.filter(pl.col("_end_stamp").is_not_null() & (pl.col("kind") == "start"))
        return pl.concat([events, stops.with_columns(stamp=pl.col("_end_stamp"), kind=pl.lit("stop"))], how="vertical_relaxed")
    if table.kind == "given":
        return _given_daily(events, name, out)
    return _held_states(events, table)


def _given_daily(events: pl.DataFrame, name: str, out: Read) -> pl.DataFrame:
    """An administration from one date to another is given on each of those dates."""
    start = pl.col("stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    end = pl.col("_end_stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    events = events.with_columns(_d0=start, _d1=pl.coalesce(end, start)).with_columns(_d1=pl.max_horizontal("_d0", "_d1"))
    long = events.filter((pl.col("_d1") - pl.col("_d0")).dt.total_days() > MAX_GIVEN_DAYS)
    if long.height:
        out.notes.append(
            f"{name}: {long.height} administrations over more than {MAX_GIVEN_DAYS} days were read on their first date only "
            f"(first: {long['source'][0]})"
        )
    events = events.with_columns(
        _d1=pl.when((pl.col("_d1") - pl.col("_d0")).dt.total_days() > MAX_GIVEN_DAYS)
        .then(pl.col("_d0"))
        .otherwise(pl.col("_d1")),
        _row=pl.int_range(pl.len()),
    )
    dated = events.filter(pl.col("_d0").is_not_null())
    spread = dated.with_columns(_date=pl.date_ranges("_d0", "_d1", "1d")).explode("_date")
    spread = spread.with_columns(_n=pl.int_range(pl.len()).over("_row"))
    spread = spread.with_columns(
        stamp=pl.when(pl.col("_n") == 0).then(pl.col("stamp")).otherwise(pl.col("_date").dt.strftime("%Y-%m-%d"))
    )
    # an unreadable start is named by the core, which reads every stamp
    return pl.concat([spread.drop("_date", "_n"), events.filter(pl.col("_d0").is_null())], how="vertical_relaxed")


def _held_states(events: pl.DataFrame, table: Table) -> pl.DataFrame:
    """A state interval's values from its start; at each local midnight inside it
    (the core holds a charting a day at most, and opens each day with a 00:00 row);
    at its end, the values of the latest interval of the patient still running
    then, else the table's `outside` values (an oxygen source is complete: none
    outside)."""
    records = events.select("patient_id", "_rec", "_t0", "_t1", "stamp", "_end_stamp", "naive", "source").unique("_rec")
    ends = records.filter(pl.col("_t1").is_not_null()).select(
        "patient_id",
        pl.col("_rec").alias("_ending"),
        pl.col("_t1").alias("_at"),
        pl.col("_end_stamp").alias("_point"),
        "naive",
        "source",
    )
    # midnights on the written clock inside intervals whose times carry no offset
    start_day = pl.col("stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    end_day = pl.col("_end_stamp").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    plain = parse_timestamps(pl.col("stamp"))["offset_min"].is_null()
    spans = records.filter(pl.col("_t1").is_not_null() & plain).with_columns(_d0=start_day + pl.duration(days=1), _d1=end_day)
    spans = spans.filter(
        pl.col("_d0").is_not_null()
        & pl.col("_d1").is_not_null()
        & ((pl.col("_d1") - pl.col("_d0")).dt.total_days() <= MAX_GIVEN_DAYS)
    ).filter(pl.col("_d0") <= pl.col("_d1"))
    midnights = (
        spans.with_columns(_day=pl.date_ranges("_d0", "_d1", "1d"))
        .explode("_day")
        .with_columns(
            _at=pl.col("_day").cast(pl.Datetime("us")).dt.epoch("us"), _point=pl.col("_day").dt.strftime("%Y-%m-%dT00:00")
        )
        .filter((pl.col("_t0") < pl.col("_at")) & (pl.col("_at") < pl.col("_t1")))
        .select("patient_id", pl.lit(None, dtype=pl.String).alias("_ending"), "_at", "_point", "naive", "source")
        .unique(["patient_id", "_at"])
    )
    points = pl.concat([ends, midnights.join(ends.select("patient_id", "_at"), on=["patient_id", "_at"], how="anti")])
    points = points.with_row_index("_point_id")
    running = (
        points.join(records.select("patient_id", "_rec", "_t0", "_t1"), on="patient_id")
        .filter(
            (pl.col("_rec") != pl.col("_ending")).fill_null(True)
            & (pl.col("_t0") <= pl.col("_at"))
            & (pl.col("_t1").is_null() | (pl.col("_at") < pl.col("_t1")))
        )
        .group_by("_point_id")
        .agg(pl.col("_rec").sort_by(["_t0", "_rec"]).last().alias("_running"), pl.col("_t0").max().alias("_since"))
    )
    points = points.join(running, on="_point_id", how="left")
    # the interval running then is charted again; one starting at that instant (a hand-over) says so itself
    resumed = points.filter(pl.col("_running").is_not_null() & (pl.col("_since") < pl.col("_at")))
    again = events.join(resumed.select(pl.col("_running").alias("_rec"), "_point"), on="_rec").with_columns(
        stamp=pl.col("_point")
    )
    parts = [events, again.drop("_point")]
    free = points.filter(pl.col("_running").is_null() & pl.col("_ending").is_not_null())
    for column, value in table.outside.items():
        parts.append(
            free.select(
                "patient_id",
                pl.col("_point").alias("stamp"),
                "naive",
                "source",
                pl.lit(column).alias("column"),
                pl.lit(value).alias("text"),
                pl.lit("state").alias("kind"),
            )
        )
    return pl.concat(parts, how="diagonal_relaxed")


def _problem(source: str, message: str, column: str, value: object) -> InputProblem:
    from carscore.importer.rows import problem

    return problem(source, message, column, value)
