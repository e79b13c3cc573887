"""REDCap data dictionaries, found beside a wide table: their choices decode choice
codes to labels and checkbox columns var___k to the choice checked, and headers
exported as field labels are renamed back to field names."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from carscore.errors import InputProblem
from carscore.importer.cells import norm
from carscore.importer.events import Read
from carscore.importer.files import SUFFIXES, Sources, read_text_table
from carscore.importer.mapping_tables import Dictionary

# a checkbox column exported under its labels: "<field label> (choice=<choice label>)"
_CHOICE_HEADER = re.compile(r"^(.*)\(choice=(.*)\)\s*$", re.S)
# how a checked checkbox is written
_CHECKED = ("1", "checked", "yes", "true")


def find_beside(path: Path, stems: list[str]) -> Path | None:
    """The first of these stems among the tabular files beside ``path`` (its data dictionary)."""
    beside = Sources()
    for f in sorted(path.parent.iterdir()):
        if f.is_file() and f.suffix.lower() in SUFFIXES and f != path:
            beside.setdefault(f.stem.lower(), f)
    return next((beside[s] for s in stems if s in beside), None)


def read_choices(path: Path, spec: Dictionary, out: Read) -> tuple[pl.DataFrame, dict[str, str], set[str]]:
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


def rename_labelled(frame: pl.DataFrame, labels: dict[str, str], choices: pl.DataFrame) -> pl.DataFrame:
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


def decoded(matched: pl.DataFrame, choices: pl.DataFrame | None) -> pl.DataFrame:
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
    checked = norm(pl.col("_value")).str.replace(r"\.0+$", "").is_in(_CHECKED)
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
