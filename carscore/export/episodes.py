"""Episodes of a toxicity and the treatment given during them (outputs.md §0).

An episode starts on a day at or after the grade's first counted day (the
rule set's ``counted_from``, day 0 for every built-in grade) with grade >= 1,
and ends on the first later day with a *recorded* grade 0: its resolution
day. Days without a grade do not end it; with no such day it is unresolved
and stays open to the last day of data. A day is "open" when an episode
runs on it: onset <= day < resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from carscore.compile import COURSE, DAY
from carscore.ruleset import RuleSet

# contract §1 treatment columns read by the registry forms and table 2 (outputs.md §0):
# anti-IL-6, corticosteroids for CRS/ICANS, other anti-cytokine agents
TREATMENTS = ("tocilizumab", "corticosteroids", "other_anticytokine")


@dataclass(frozen=True)
class GradedOutput:
    """A day grade with standard summaries, as exports read it."""

    name: str  # day output key, e.g. crs_grade_lee2014
    pattern: str  # summary key pattern, e.g. crs_*_lee2014
    counted_from: float  # the first day the summaries count
    ruleset_id: str
    ruleset_version: str
    system: str
    label: str
    reason_key: str  # the JSON reasons key explaining it (crs, crs_lee2014)
    paramcd: str = ""  # its ADaM parameter as its rule file declares it (presentation 'cdisc')
    param: str = ""
    param_order: float | None = None

    @property
    def toxicity(self) -> str:
        """The toxicity word of the key pattern: crs_*_lee2014 -> crs."""
        return self.pattern.split("*", 1)[0].rstrip("_")

    @property
    def system_suffix(self) -> str:
        """The system part of the key pattern: crs_*_lee2014 -> lee2014; crs_* -> ""."""
        return self.pattern.split("*", 1)[1].lstrip("_")

    def key(self, word: str) -> str:
        return self.pattern.replace("*", word, 1)


def graded_outputs(rulesets: list[RuleSet]) -> list[GradedOutput]:
    """Every graded day output with standard summaries, in rule-set order, with
    the rule set that decides it and its first counted day resolved."""
    out = []
    for rs in rulesets:
        reasons = {name: d.reason_key for d in rs.decisions if d.reason_key for name in d.outputs}
        for view in rs.presentation.values():
            if view.kind != "grade" or not view.summaries or view.of_course:
                continue
            start = view.counted_from
            if isinstance(start, str):
                parameter = rs.parameters.get(start)
                start = parameter.value if parameter is not None else 0
            out.append(
                GradedOutput(
                    view.name,
                    view.summaries,
                    float(start),
                    rs.id,
                    rs.version,
                    rs.system,
                    view.label,
                    reasons.get(view.name, ""),
                    view.paramcd,
                    view.param,
                    view.param_order,
                )
            )
    return out


def episode_days(days: pl.DataFrame, grade: str, start: float) -> pl.DataFrame:
    """Per course-day: _course, day, grade, episode (number of the episode open
    that day, from 1 within the course; null when none is open), onset
    (that episode's onset day) and resolves (the day is an episode's resolution
    day, with the number of the episode it ends in ``resolved_episode``)."""
    frame = days.select(COURSE, DAY, pl.col(grade).cast(pl.Float64).alias("grade")).sort(COURSE, DAY)
    g, d = pl.col("grade"), pl.col(DAY)
    # the last event on or before each day decides whether an episode is open: a
    # counted grade >= 1 opens (or continues) one, a recorded grade 0 ends it
    event = pl.when((g >= 1) & (d >= start)).then(pl.lit(1)).when(g == 0).then(pl.lit(0))
    frame = frame.with_columns(event.alias("_event"))
    frame = frame.with_columns(pl.col("_event").forward_fill().over(COURSE).fill_null(0).alias("_open"))
    before = pl.col("_open").shift(1).over(COURSE).fill_null(0)
    frame = frame.with_columns(
        ((pl.col("_open") == 1) & (before == 0)).alias("_starts"),
        ((pl.col("_open") == 0) & (before == 1)).alias("resolves"),
    )
    frame = frame.with_columns(pl.col("_starts").cast(pl.Int32).cum_sum().over(COURSE).alias("_count"))
    frame = frame.with_columns(
        pl.when(pl.col("_open") == 1).then(pl.col("_count")).alias("episode"),
        pl.when(pl.col("resolves")).then(pl.col("_count")).alias("resolved_episode"),
    )
    onsets = frame.filter(pl.col("_starts")).select(COURSE, pl.col("episode"), pl.col(DAY).alias("onset"))
    frame = frame.join(onsets, on=[COURSE, "episode"], how="left")
    return frame.select(COURSE, DAY, "grade", "episode", "onset", "resolves", "resolved_episode").sort(COURSE, DAY)


def episodes(per_day: pl.DataFrame) -> pl.DataFrame:
    """One row per episode: _course, episode, onset_day, resolution_day (null
    when unresolved), from ``episode_days``."""
    opened = (
        per_day.filter(pl.col("episode").is_not_null())
        .group_by(COURSE, "episode")
        .agg(pl.col("onset").first().alias("onset_day"))
    )
    ended = per_day.filter(pl.col("resolves")).select(
        COURSE, pl.col("resolved_episode").alias("episode"), pl.col(DAY).alias("resolution_day")
    )
    return opened.join(ended, on=[COURSE, "episode"], how="left").sort(COURSE, "episode")


def treatment_days(rows: pl.DataFrame, file_columns: list[frozenset[str]]) -> pl.DataFrame:
    """Per course-day, for each treatment column: true when any of the day's
    rows has it given, false when recorded and never given, null when the
    course's file lacks the column or no row records it. Also
    ``has_<treatment>``: whether the course's file has the column at all."""
    present = [t for t in TREATMENTS if t in rows.columns]
    aggregated = rows.group_by(COURSE, DAY).agg([pl.col(t).any(ignore_nulls=True).alias(t) for t in present])
    recorded = rows.group_by(COURSE, DAY).agg([pl.col(t).is_not_null().any().alias(f"_rec_{t}") for t in present])
    files = rows.group_by(COURSE).agg(pl.col("_file").first())
    has = {
        t: pl.Series(
            f"has_{t}", [t in (file_columns[f] if f < len(file_columns) else ()) for f in files["_file"]], dtype=pl.Boolean
        )
        for t in TREATMENTS
    }
    files = files.with_columns(list(has.values()))
    out = aggregated.join(recorded, on=[COURSE, DAY], how="left").join(files.drop("_file"), on=COURSE, how="left")
    out = out.with_columns(
        [pl.when(pl.col(f"_rec_{t}") & pl.col(f"has_{t}")).then(pl.col(t)).alias(t) for t in present]
        + [pl.lit(None, dtype=pl.Boolean).alias(t) for t in TREATMENTS if t not in present]
    )
    return out.select(COURSE, DAY, *TREATMENTS, *[f"has_{t}" for t in TREATMENTS]).sort(COURSE, DAY)


def course_has(treatments: pl.DataFrame) -> pl.DataFrame:
    """Per course: has_<treatment> (the course's file has the column)."""
    return treatments.group_by(COURSE).agg([pl.col(f"has_{t}").first() for t in TREATMENTS])
