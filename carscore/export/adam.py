"""ADCART, "CAR-T Toxicity and Response by Day" (outputs.md §1): one record per
course x day x parameter, and a course-maximum record per grade, from the same
day values and summaries as the JSON document (contract §2)."""

from __future__ import annotations

import polars as pl

from carscore.assess import Assessment
from carscore.compile import COURSE, DAY
from carscore.export.dates import CourseDates, courses_of
from carscore.export.parameters import grade_parameters
from carscore.ruleset import RuleSet

DATASET = "ADCART"
DATASET_LABEL = "CAR-T Toxicity and Response by Day"

# outputs.md §1 variables, in order, with their labels
LABELS = {
    "STUDYID": "Study Identifier",
    "USUBJID": "Unique Subject Identifier",
    "INFNUM": "CAR-T Infusion Number",
    "PARAMCD": "Parameter Code",
    "PARAM": "Parameter",
    "DTYPE": "Derivation Type",
    "AVAL": "Analysis Value",
    "AVALC": "Analysis Value (C)",
    "ADT": "Analysis Date",
    "ADY": "Analysis Relative Day",
    "ADYCART": "Day Relative to CAR-T Infusion",
    "RULESET": "Rule Set and Version",
    "AREASON": "Reason for Value",
    "SRCFILE": "Source File",
    "SRCROWS": "Source Rows (Header Is Row 1)",
    "SRCREC": "Source Records",
}
COLUMNS = list(LABELS)
MAXIMUM = "MAXIMUM"

# The disease-course parameters of outputs.md §1: (PARAMCD, PARAM, day output,
# reasons key, how AVAL is read from the value). Contract §2 day keys, not systems.
_CNS_LEVEL = pl.col("_value").str.extract(r"^CNS-(\d)", 1).cast(pl.Float64)
_MRD_FLAG = pl.col("_value").cast(pl.Float64)
_MRD_TEXT = pl.when(pl.col("_value")).then(pl.lit("Y")).when(~pl.col("_value")).then(pl.lit("N"))
COURSE_PARAMETERS: list[tuple[str, str, str, str, pl.Expr | None, pl.Expr | None]] = [
    # (code, label, output, reason key, AVAL, AVALC); None: AVAL missing / AVALC the value itself
    ("CNSSTAT", "CNS Status", "cns_status", "cns", _CNS_LEVEL, None),
    ("CNSSUB", "CNS Status Subcategory", "cns_substatus", "cns", None, None),
    ("BMRESP", "Marrow Response", "bm_response", "bm", None, None),
    ("MRDNEG", "Marrow MRD Negative", "mrd_negative", "mrd", _MRD_FLAG, _MRD_TEXT),
]
CARCOPY = ("CARCOPY", "CAR Transgene (copies/ug DNA)", "car_copies")

_RECORD = {
    COURSE: pl.UInt32,
    "_order": pl.Int32,
    "_maximum": pl.Int8,
    "PARAMCD": pl.String,
    "PARAM": pl.String,
    "DTYPE": pl.String,
    "AVAL": pl.Float64,
    "AVALC": pl.String,
    "ADYCART": pl.Int64,
    "RULESET": pl.String,
    "AREASON": pl.String,
}


def _records(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select([pl.col(name).cast(dtype) for name, dtype in _RECORD.items()])


def _grade_text(value: pl.Expr) -> pl.Expr:
    return pl.when(value.is_not_null()).then(value.cast(pl.Int64).cast(pl.String))


def _reason(days: pl.DataFrame, key: str) -> pl.Expr:
    column = f"_reason_{key}"
    return pl.col(column).cast(pl.String) if key and column in days.columns else pl.lit(None, dtype=pl.String)


def _deciders(rulesets: list[RuleSet]) -> dict[str, str]:
    """Day output -> "<rule set id> <version>" of the rule set that decides it."""
    return {name: f"{rs.id} {rs.version}" for rs in rulesets for d in rs.decisions for name in d.outputs}


def adcart(assessment: Assessment, dates: CourseDates, studyid: str = "") -> pl.DataFrame:
    """The ADCART records, with the whole text of reasons and source records."""
    days = assessment.days.sort(COURSE, DAY)
    summaries = assessment.summaries
    deciders = _deciders(assessment.rulesets)
    parts: list[pl.DataFrame] = []
    order = 0
    for p in grade_parameters(assessment.rulesets):
        out = p.output
        if out.name not in days.columns:
            continue
        ruleset = f"{out.ruleset_id} {out.ruleset_version}"
        grade = pl.col(out.name).cast(pl.Float64)
        common = {"_order": pl.lit(order), "PARAMCD": pl.lit(p.paramcd), "PARAM": pl.lit(p.param), "RULESET": pl.lit(ruleset)}
        parts.append(
            _records(
                days.select(
                    COURSE,
                    pl.col(DAY).alias("ADYCART"),
                    grade.alias("AVAL"),
                    _grade_text(grade).alias("AVALC"),
                    _reason(days, out.reason_key).alias("AREASON"),
                ).with_columns(**common, _maximum=pl.lit(0), DTYPE=pl.lit(None, dtype=pl.String))
            )
        )
        parts.append(
            _records(_maximum_records(days, summaries, out.name, out.key("max_grade"), out.counted_from).with_columns(**common))
        )
        order += 1
    for code, label, output, reason_key, value, text in COURSE_PARAMETERS:
        if output not in days.columns:
            continue
        reason = _reason(days, reason_key)
        kept = days.filter(pl.col(output).is_not_null() | reason.is_not_null())
        kept = kept.select(COURSE, pl.col(DAY).alias("ADYCART"), pl.col(output).alias("_value"), reason.alias("AREASON"))
        parts.append(
            _records(
                kept.with_columns(
                    (value if value is not None else pl.lit(None, dtype=pl.Float64)).alias("AVAL"),
                    (text if text is not None else pl.col("_value").cast(pl.String)).alias("AVALC"),
                    _order=pl.lit(order),
                    _maximum=pl.lit(0),
                    PARAMCD=pl.lit(code),
                    PARAM=pl.lit(label),
                    DTYPE=pl.lit(None, dtype=pl.String),
                    RULESET=pl.lit(deciders.get(output)),
                )
            )
        )
        order += 1
    code, label, column = CARCOPY
    rows = _course_rows(assessment)
    if column in rows.columns:
        highest = rows.filter(pl.col(column).is_not_null()).group_by(COURSE, DAY).agg(pl.col(column).max().alias("AVAL"))
        parts.append(
            _records(
                highest.select(COURSE, pl.col(DAY).alias("ADYCART"), "AVAL").with_columns(
                    _order=pl.lit(order),
                    _maximum=pl.lit(0),
                    PARAMCD=pl.lit(code),
                    PARAM=pl.lit(label),
                    DTYPE=pl.lit(None, dtype=pl.String),
                    AVALC=pl.lit(None, dtype=pl.String),
                    RULESET=pl.lit(None, dtype=pl.String),
                    AREASON=pl.lit(None, dtype=pl.String),
                )
            )
        )
    records = pl.concat(parts) if parts else _records(pl.DataFrame(schema=_RECORD))
    return _finish(records, assessment, rows, dates, studyid)


def _maximum_records(days: pl.DataFrame, summaries: pl.DataFrame, grade: str, max_key: str, start: float) -> pl.DataFrame:
    """outputs.md §1 course maximum: the summary maximum, dated on the first counted
    day with that grade; blank when the maximum is null."""
    if max_key in summaries.columns:
        maxima = summaries.select(COURSE, pl.col(max_key).cast(pl.Float64).alias("AVAL"))
    else:
        maxima = summaries.select(COURSE, pl.lit(None, dtype=pl.Float64).alias("AVAL"))
    reached = (
        days.select(COURSE, DAY, pl.col(grade).cast(pl.Float64).alias("_grade"))
        .join(maxima, on=COURSE)
        .filter((pl.col(DAY) >= start) & (pl.col("_grade") == pl.col("AVAL")))
        .group_by(COURSE)
        .agg(pl.col(DAY).min().alias("ADYCART"))
    )
    return maxima.join(reached, on=COURSE, how="left").with_columns(
        _grade_text(pl.col("AVAL")).alias("AVALC"),
        _maximum=pl.lit(1),
        DTYPE=pl.lit(MAXIMUM),
        AREASON=pl.lit(None, dtype=pl.String),
    )


def _course_rows(assessment: Assessment) -> pl.DataFrame:
    """The input rows of the assessed courses."""
    rows = assessment.intake.rows
    return rows.join(assessment.summaries.select(COURSE), on=COURSE, how="semi")


def day_sources(rows: pl.DataFrame) -> pl.DataFrame:
    """Per course-day: SRCROWS (its input rows, ascending, ";"-joined) and SRCREC
    (the rows' source records, " | "-joined; null when none carries one)."""
    has_source = "source" in rows.columns
    aggs = [pl.col("_line").sort().cast(pl.String).str.join(";").alias("SRCROWS")]
    if has_source:
        source = pl.col("source").sort_by("_line").drop_nulls()
        aggs.append(pl.when(source.len() > 0).then(source.str.join(" | ")).alias("SRCREC"))
    out = rows.group_by(COURSE, DAY).agg(aggs)
    if not has_source:
        out = out.with_columns(pl.lit(None, dtype=pl.String).alias("SRCREC"))
    return out.rename({DAY: "ADYCART"})


def _finish(records: pl.DataFrame, assessment: Assessment, rows: pl.DataFrame, dates: CourseDates, studyid: str) -> pl.DataFrame:
    courses = courses_of(assessment).select(
        COURSE,
        pl.col("patient_id").alias("USUBJID"),
        pl.col("infusion").cast(pl.Int64).alias("INFNUM"),
        pl.col("file").alias("SRCFILE"),
    )
    out = (
        records.join(courses, on=COURSE, how="left")
        .join(day_sources(rows), on=[COURSE, "ADYCART"], how="left")
        .join(dates.table, on=COURSE, how="left")
        .sort(COURSE, "_order", "_maximum", "ADYCART", nulls_last=True)
    )
    day = pl.col("ADYCART")
    return out.select(
        pl.lit(studyid or None, dtype=pl.String).alias("STUDYID"),
        "USUBJID",
        "INFNUM",
        "PARAMCD",
        "PARAM",
        "DTYPE",
        "AVAL",
        "AVALC",
        (pl.col("infusion_date") + pl.duration(days=day)).cast(pl.Date).alias("ADT"),
        # SDTM --DY: the infusion day is day 1, and there is no day 0
        pl.when(day >= 0).then(day + 1).otherwise(day).alias("ADY"),
        "ADYCART",
        "RULESET",
        "AREASON",
        "SRCFILE",
        "SRCROWS",
        "SRCREC",
    )


def _whole(value: pl.Expr) -> pl.Expr:
    """A number as CSV text: whole numbers without ".0" (outputs.md §1 CSV)."""
    whole = (value == value.round(0)) & (value.abs() < 2**53)
    return pl.when(whole).then(value.cast(pl.Int64).cast(pl.String)).otherwise(value.cast(pl.String))


def adcart_csv_table(table: pl.DataFrame) -> pl.DataFrame:
    """ADCART as its CSV shows it: whole numbers without ".0", dates as YYYY-MM-DD."""
    return table.with_columns(_whole(pl.col("AVAL")).alias("AVAL"))
