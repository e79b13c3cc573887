"""CIBMTR 4100 and EBMT MED-A toxicity rows (outputs.md §2): one row per course
x toxicity x reporting window, with the episodes, resolution and treatment of
outputs.md §0, from the ASTCT 2019 day grades of the JSON document."""

from __future__ import annotations

import polars as pl

from carscore.assess import REFERENCE_SYSTEM, Assessment
from carscore.compile import COURSE, DAY
from carscore.export.dates import CourseDates, courses_of
from carscore.export.episodes import TREATMENTS, episode_days, episodes, treatment_days
from carscore.export.parameters import grade_parameters

# the form each registry reports CRS and ICANS on (outputs.md §2)
FORMS = {"cibmtr": "4100", "ebmt": "MED-A"}
COLUMNS = [
    "patient_id",
    "infusion",
    "infusion_date",
    "form",
    "window",
    "window_start_day",
    "window_end_day",
    "window_start_date",
    "window_end_date",
    "data_through_day",
    "toxicity",
    "grading_system",
    "occurred",
    "previously_reported",
    "onset_day",
    "onset_date",
    "max_grade",
    "resolution_day",
    "resolution_date",
    *TREATMENTS,
    "therapy_given",
]

# outputs.md §2 windows [R]: D100 = days 0-100, M6 = 101-182, Y1 = 183-365, Yk = 365(k-1)+1 ... 365k
FIRST_WINDOWS = (("D100", 0, 100), ("M6", 101, 182), ("Y1", 183, 365))
YEAR = 365


def window_of(day: pl.Expr) -> pl.Expr:
    """The index of the reporting window holding a day >= 0 (0 = D100)."""
    index = pl.when(day <= FIRST_WINDOWS[0][2]).then(0).when(day <= FIRST_WINDOWS[1][2]).then(1).when(day <= YEAR).then(2)
    return index.otherwise((day - 1) // YEAR + 2).cast(pl.Int64)


def window_bounds(index: int) -> tuple[str, int, int]:
    if index < len(FIRST_WINDOWS):
        return FIRST_WINDOWS[index]
    year = index - 1
    return f"Y{year}", YEAR * (year - 1) + 1, YEAR * year


def _windows(days: pl.DataFrame) -> pl.DataFrame:
    """Every course's windows from D100 up to the one holding its last day."""
    last = days.group_by(COURSE).agg(pl.col(DAY).max().clip(0).alias("_last"))
    last = last.with_columns(window_of(pl.col("_last")).alias("_upto"))
    rows = []
    for course, upto in last.select(COURSE, "_upto").iter_rows():
        for index in range(upto + 1):
            name, start, end = window_bounds(index)
            rows.append((course, index, name, start, end))
    schema = {
        COURSE: pl.UInt32,
        "_window": pl.Int64,
        "window": pl.String,
        "window_start_day": pl.Int64,
        "window_end_day": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _yes_no(flag: pl.Expr) -> pl.Expr:
    return pl.when(flag).then(pl.lit("yes")).when(~flag).then(pl.lit("no"))


def registry_rows(assessment: Assessment, dates: CourseDates, registry: str) -> pl.DataFrame:
    """The rows of ``registry`` ("cibmtr" or "ebmt"), ordered by course, CRS before ICANS, window."""
    form = FORMS[registry]
    days = assessment.days.sort(COURSE, DAY)
    rows = assessment.intake.rows.join(assessment.summaries.select(COURSE), on=COURSE, how="semi")
    given = treatment_days(rows, assessment.intake.file_columns)
    windows = _windows(days)
    parts = []
    reference = [p for p in grade_parameters(assessment.rulesets, unique_codes=False) if p.output.system == REFERENCE_SYSTEM]
    for order, parameter in enumerate(reference):
        out = parameter.output
        if out.name not in days.columns:
            continue
        per_day = episode_days(days, out.name, out.counted_from)
        spans = episodes(per_day)
        per_day = per_day.join(given, on=[COURSE, DAY], how="left").filter(pl.col(DAY) >= 0)
        per_day = per_day.with_columns(window_of(pl.col(DAY)).alias("_window"))
        open_day = pl.col("episode").is_not_null()
        summary = per_day.group_by(COURSE, "_window").agg(
            pl.col(DAY).max().alias("data_through_day"),
            pl.col("grade").is_not_null().any().alias("_graded"),
            (pl.col("grade") >= 1).any().alias("_occurred"),
            pl.col("grade").max().alias("_max"),
            pl.col("episode").min().alias("_first_episode"),
            pl.col("episode").max().alias("_last_episode"),
            *[(open_day & pl.col(t).fill_null(False)).any().alias(f"_{t}") for t in TREATMENTS],
        )
        table = windows.join(summary, on=[COURSE, "_window"], how="left")
        onsets = spans.select(COURSE, pl.col("episode").alias("_first_episode"), pl.col("onset_day"))
        ends = spans.select(COURSE, pl.col("episode").alias("_last_episode"), pl.col("resolution_day"))
        table = table.join(onsets, on=[COURSE, "_first_episode"], how="left").join(ends, on=[COURSE, "_last_episode"], how="left")
        has = given.group_by(COURSE).agg([pl.col(f"has_{t}").first() for t in TREATMENTS])
        table = table.join(has, on=COURSE, how="left")
        occurred = pl.when(pl.col("_occurred")).then(pl.lit("yes")).when(pl.col("_graded")).then(pl.lit("no"))
        table = table.with_columns(occurred.alias("occurred"))
        yes = pl.col("occurred") == "yes"
        treated = {
            t: pl.when(yes & pl.col(f"has_{t}").fill_null(False)).then(_yes_no(pl.col(f"_{t}").fill_null(False)))
            for t in TREATMENTS
        }
        any_column = pl.any_horizontal([pl.col(f"has_{t}").fill_null(False) for t in TREATMENTS])
        any_given = pl.any_horizontal(
            [pl.col(f"_{t}").fill_null(False) & pl.col(f"has_{t}").fill_null(False) for t in TREATMENTS]
        )
        table = table.with_columns(
            pl.lit(order).alias("_order"),
            pl.lit(out.toxicity.upper()).alias("toxicity"),
            pl.lit(parameter.system_name).alias("grading_system"),
            pl.when(yes).then(_yes_no(pl.col("onset_day") < pl.col("window_start_day"))).alias("previously_reported"),
            pl.when(yes).then(pl.col("onset_day")).alias("onset_day"),
            pl.when(pl.col("occurred").is_not_null()).then(pl.col("_max")).cast(pl.Int64).alias("max_grade"),
            pl.when(yes).then(pl.col("resolution_day")).alias("resolution_day"),
            *[expr.alias(t) for t, expr in treated.items()],
            pl.when(yes & any_column).then(_yes_no(any_given)).alias("therapy_given"),
        )
        parts.append(table)
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(COLUMNS, pl.String))
    table = pl.concat(parts, how="diagonal_relaxed")
    return _dated(table, assessment, dates, form)


def _dated(table: pl.DataFrame, assessment: Assessment, dates: CourseDates, form: str) -> pl.DataFrame:
    courses = courses_of(assessment).select(COURSE, "patient_id", pl.col("infusion").cast(pl.Int64))
    table = table.join(courses, on=COURSE, how="left").join(dates.table, on=COURSE, how="left")
    table = table.sort(COURSE, "_order", "_window")

    def date_of(day: str) -> pl.Expr:
        return (pl.col("infusion_date") + pl.duration(days=pl.col(day))).cast(pl.Date)

    return table.select(
        "patient_id",
        "infusion",
        "infusion_date",
        (pl.lit(f"{form} ") + pl.col("window")).alias("form"),
        "window",
        "window_start_day",
        "window_end_day",
        date_of("window_start_day").alias("window_start_date"),
        date_of("window_end_day").alias("window_end_date"),
        pl.col("data_through_day").cast(pl.Int64),
        "toxicity",
        "grading_system",
        "occurred",
        "previously_reported",
        pl.col("onset_day").cast(pl.Int64),
        date_of("onset_day").alias("onset_date"),
        "max_grade",
        pl.col("resolution_day").cast(pl.Int64),
        date_of("resolution_day").alias("resolution_date"),
        *TREATMENTS,
        "therapy_given",
    )
