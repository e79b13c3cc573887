"""The import core: time zones, courses, held states and drips, units, rows
(import.md §1-§4), on events written by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from carscore.errors import UsageError
from carscore.importer.clock import Zone, parse_timestamps
from carscore.importer.events import conform
from carscore.importer.infusions import read_infusions
from carscore.importer.rows import build_rows

ZONE = "America/Chicago"


def events(*rows: dict) -> pl.DataFrame:
    base = {"patient_id": "P1", "naive": "utc", "kind": "measure"}
    return conform(pl.DataFrame([{**base, **r} for r in rows], infer_schema_length=None))


def infusions(tmp_path: Path, text: str = "patient_id,infusion,infusion_datetime,age_years\nP1,1,2024-03-08T10:00,54\n"):
    path = tmp_path / "infusions.csv"
    path.write_text(text, encoding="utf-8")
    return read_infusions(str(path), Zone(ZONE))


def build(tmp_path: Path, *rows: dict, medications: bool = True, inf: str | None = None):
    zone = Zone(ZONE)
    table = infusions(tmp_path, inf) if inf else infusions(tmp_path)
    return build_rows(events(*rows), table, zone, medications_read=medications)


def cells(built, *columns: str) -> list[tuple]:
    return [tuple(r) for r in built.rows.select("day", "time", *columns).iter_rows()]


# --- clocks ------------------------------------------------------------------------


def test_timestamps_parse_offsets_dates_and_refuse_nonsense() -> None:
    frame = pl.DataFrame({"s": ["2024-03-09T23:30:00Z", "2024-03-09 23:30-05:00", "2024-03-09", "2024-02-30T10:00", "soon"]})
    out = frame.select(**parse_timestamps(pl.col("s")))
    assert out["offset_min"].to_list() == [0, -300, None, None, None]
    assert out["has_time"].to_list() == [True, True, False, True, False]
    assert out["valid"].to_list() == [True, True, True, False, False]


def test_zone_offsets_follow_daylight_saving_in_any_year() -> None:
    zone = Zone(ZONE)
    for year in (2024, 2150):
        zone.cover({year})
        winter = int((np.datetime64(f"{year}-01-15T12:00") - np.datetime64("1970-01-01T00:00")) / np.timedelta64(1, "us"))
        summer = int((np.datetime64(f"{year}-07-15T12:00") - np.datetime64("1970-01-01T00:00")) / np.timedelta64(1, "us"))
        offsets = zone.offset_at(np.array([winter, summer])) / 3_600_000_000
        assert offsets.tolist() == [-6, -5]


def test_unknown_zone_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown time zone"):
        Zone("Mars/Olympus_Mons")


def test_utc_records_take_the_local_date(tmp_path: Path) -> None:
    # 03:30 UTC on March 10 is 21:30 on March 9 in Chicago: day 1, not day 2
    built = build(tmp_path, {"stamp": "2024-03-10T03:30:00Z", "column": "temp_c", "number": 38.4, "unit": "Cel", "source": "v:2"})
    assert cells(built, "temp_c") == [(1, "21:30", "38.4")]


def test_naive_local_times_in_the_dst_gap_and_overlap_are_kept_and_named(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {"stamp": "2024-03-10T02:30", "naive": "local", "column": "temp_c", "number": 38.0, "source": "v:2"},
        {"stamp": "2024-11-03T01:30", "naive": "local", "column": "temp_c", "number": 37.0, "source": "v:3"},
    )
    assert [(d, t) for d, t, _ in cells(built, "temp_c")] == [(2, "02:30"), (240, "01:30")]
    assert any("spring-forward gap" in n and "v:2" in n for n in built.notes)
    assert any("autumn overlap" in n and "v:3" in n for n in built.notes)


def test_offsets_without_a_time_zone_are_a_usage_error(tmp_path: Path) -> None:
    table = infusions(tmp_path)
    with pytest.raises(UsageError, match="--timezone"):
        build_rows(events({"stamp": "2024-03-10T03:30:00Z", "column": "temp_c", "number": 38.0, "source": "v:2"}), table, None)


def test_a_time_without_offset_where_one_is_required_is_named(tmp_path: Path) -> None:
    built = build(
        tmp_path, {"stamp": "2024-03-10T03:30", "naive": "error", "column": "temp_c", "number": 38.0, "source": "o.ndjson:4#obs1"}
    )
    assert built.rows.height == 0
    (problem,) = [p for p in built.problems if p.file == "o.ndjson"]
    assert problem.file == "o.ndjson" and problem.row == 4 and "obs1" in problem.message


# --- courses -------------------------------------------------------------------------


def test_records_belong_to_the_latest_infusion_on_or_before_their_date(tmp_path: Path) -> None:
    two = "patient_id,infusion,infusion_datetime,age_years\nP1,1,2024-05-01T09:00,61\nP1,2,2024-06-10T09:00,61\n"
    built = build(
        tmp_path,
        {"stamp": "2024-04-29T15:00:00Z", "column": "temp_c", "number": 37.0, "source": "v:2"},
        {"stamp": "2024-06-09T15:00:00Z", "column": "temp_c", "number": 38.0, "source": "v:3"},
        {"stamp": "2024-06-10T15:00:00Z", "column": "temp_c", "number": 39.0, "source": "v:4"},
        inf=two,
    )
    # 2024-06-09 15:00 UTC is 10:00 local, day 39 of the first course; June 10 is day 0 of the second
    assert built.rows.select("infusion", "day", "temp_c").rows() == [(1, -2, "37"), (1, 39, "38"), (2, 0, "39")]
    assert built.rows["age_years"].to_list() == [61.0, None, 61.0]


# --- held states and drips ---------------------------------------------------------------


def test_a_drip_across_midnight_opens_the_next_day(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {
            "stamp": "2024-03-10T05:30:00Z",
            "column": "vasopressors",
            "agent": "norepinephrine",
            "order_id": "1",
            "kind": "start",
            "source": "m:2",
        },
        {
            "stamp": "2024-03-10T12:00:00Z",
            "column": "vasopressors",
            "agent": "norepinephrine",
            "order_id": "1",
            "kind": "stop",
            "source": "m:3",
        },
    )
    assert cells(built, "vasopressors") == [(1, "23:30", "1"), (2, "00:00", "1"), (2, "07:00", "0")]
    assert "vasopressors=m:2,m:3" in built.rows["source"][1]


def test_overlapping_agents_count_together_and_a_hand_over_is_one(tmp_path: Path) -> None:
    def drip(agent: str, start: str, stop: str, order: str) -> list[dict]:
        common = {"column": "vasopressors", "agent": agent, "order_id": order}
        return [
            {**common, "stamp": start, "kind": "start", "source": f"m:{order}a"},
            {**common, "stamp": stop, "kind": "stop", "source": f"m:{order}b"},
        ]

    built = build(
        tmp_path,
        *drip("norepinephrine", "2024-03-10T19:00:00Z", "2024-03-11T01:00:00Z", "1"),
        *drip("epinephrine", "2024-03-10T21:00:00Z", "2024-03-10T23:00:00Z", "2"),
        *drip("norepinephrine", "2024-03-11T13:00:00Z", "2024-03-11T15:00:00Z", "3"),
        *drip("phenylephrine", "2024-03-11T15:00:00Z", "2024-03-11T17:00:00Z", "4"),
        {"stamp": "2024-03-10T22:00:00Z", "column": "temp_c", "number": 39.0, "source": "v:2"},
    )
    by_time = {(d, t): v for d, t, v in cells(built, "vasopressors")}
    assert by_time[(2, "16:00")] == "2"  # both agents running
    assert by_time[(2, "18:00")] == "1"  # epinephrine stopped
    assert by_time[(3, "10:00")] == "1"  # norepinephrine stops as phenylephrine starts


def test_one_agent_under_two_orders_is_one_agent(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {
            "stamp": "2024-03-10T19:00:00Z",
            "column": "vasopressors",
            "agent": "norepinephrine",
            "order_id": "1",
            "kind": "start",
            "source": "m:2",
        },
        {
            "stamp": "2024-03-10T20:00:00Z",
            "column": "vasopressors",
            "agent": "norepinephrine",
            "order_id": "2",
            "kind": "start",
            "source": "m:3",
        },
        {
            "stamp": "2024-03-10T22:00:00Z",
            "column": "vasopressors",
            "agent": "norepinephrine",
            "order_id": "1",
            "kind": "stop",
            "source": "m:4",
        },
        {
            "stamp": "2024-03-10T23:00:00Z",
            "column": "vasopressors",
            "agent": "norepinephrine",
            "order_id": "2",
            "kind": "stop",
            "source": "m:5",
        },
    )
    assert [v for _, _, v in cells(built, "vasopressors")] == ["1", "1", "1", "0"]


def test_vasopressin_is_apart_from_the_vasopressor_count(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {
            "stamp": "2024-03-10T07:00:00Z",
            "column": "vasopressin",
            "agent": "vasopressin",
            "order_id": "9",
            "kind": "start",
            "source": "m:2",
        },
        {
            "stamp": "2024-03-10T09:00:00Z",
            "column": "vasopressin",
            "agent": "vasopressin",
            "order_id": "9",
            "kind": "stop",
            "source": "m:3",
        },
        {"stamp": "2024-03-10T08:00:00Z", "column": "temp_c", "number": 38.5, "source": "v:2"},
    )
    # 08:00 UTC is 03:00 local: the clocks went forward at 02:00 that night
    assert (2, "03:00", "0", "yes") in cells(built, "vasopressors", "vasopressin")


def test_oxygen_holds_until_the_next_charting_or_a_day(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {"stamp": "2024-03-10T04:00:00Z", "column": "o2_device", "text": "nasal_cannula", "kind": "state", "source": "r:2"},
        {
            "stamp": "2024-03-10T04:00:00Z",
            "column": "o2_flow_lpm",
            "number": 3.0,
            "unit": "L/min",
            "kind": "state",
            "source": "r:2",
        },
        {"stamp": "2024-03-10T10:00:00Z", "column": "temp_c", "number": 38.5, "source": "v:2"},
        {"stamp": "2024-03-10T12:00:00Z", "column": "o2_device", "text": "facemask", "kind": "state", "source": "r:3"},
        {"stamp": "2024-03-10T13:00:00Z", "column": "temp_c", "number": 38.1, "source": "v:3"},
        {"stamp": "2024-03-11T14:00:00Z", "column": "temp_c", "number": 37.1, "source": "v:4"},
    )
    rows = cells(built, "o2_device", "o2_flow_lpm")
    assert (1, "22:00", "nasal_cannula", "3") in rows
    assert (2, "00:00", "nasal_cannula", "3") in rows  # the device in force at midnight opens the day
    assert (2, "05:00", "nasal_cannula", "3") in rows
    assert (2, "07:00", "facemask", None) in rows  # a new device clears the flow charted under the old one
    assert (3, "00:00", "facemask", None) in rows
    assert (3, "09:00", None, None) in rows  # more than a day after the last charting: not held


def test_lab_only_rows_carry_no_states(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {"stamp": "2024-03-10T04:00:00Z", "column": "o2_device", "text": "nasal_cannula", "kind": "state", "source": "r:2"},
        {"stamp": "2024-03-10T09:00:00Z", "column": "anc", "number": 0.4, "unit": "10^3/uL", "source": "l:2"},
    )
    assert cells(built, "anc", "o2_device", "vasopressors")[-1] == (2, "04:00", "0.4", None, None)


def test_two_values_of_one_column_at_one_instant_are_two_rows(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {"stamp": "2024-03-10T14:00:00Z", "column": "temp_c", "number": 37.0, "source": "v:2"},
        {"stamp": "2024-03-10T14:00:00Z", "column": "temp_c", "number": 38.9, "source": "v:3"},
    )
    assert sorted(v for _, _, v in cells(built, "temp_c")) == ["37", "38.9"]


# --- units -----------------------------------------------------------------------


def test_units_are_converted_and_unknown_ones_named(tmp_path: Path) -> None:
    built = build(
        tmp_path,
        {"stamp": "2024-03-10T14:00:00Z", "column": "temp_c", "number": 100.4, "unit": "[degF]", "source": "v:2"},
        {"stamp": "2024-03-10T14:00:00Z", "column": "crp", "number": 5.1, "unit": "mg/dL", "source": "l:2"},
        {"stamp": "2024-03-10T14:00:00Z", "column": "anc", "number": 450, "unit": "/uL", "source": "l:3"},
        {"stamp": "2024-03-10T14:00:00Z", "column": "ferritin", "number": 9, "unit": "stones", "source": "l:4"},
    )
    assert cells(built, "temp_c", "crp", "anc") == [(2, "09:00", "38", "51", "0.45")]
    (problem,) = built.problems
    assert (problem.file, problem.row, problem.column) == ("l", 4, "unit") and "stones" in problem.message


def test_the_device_carry_limit_is_a_mapping_parameter(tmp_path: Path) -> None:
    from carscore.contract import load_contract
    from carscore.errors import RuleErrors
    from carscore.importer.mapping import read_mapping

    columns = set(load_contract().columns)
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "mapping: mine\nextends: clif\nparameters:\n  device_max_carry_hours:\n    value: 6\n    citation: our ward charts every 4 h\n",
        encoding="utf-8",
    )
    assert read_mapping(mine, columns).device_max_carry_hours == 6
    mine.write_text(
        "mapping: mine\nextends: clif\nparameters:\n  device_max_carry_hours: {value: -1, citation: x}\n", encoding="utf-8"
    )
    with pytest.raises(RuleErrors, match=r"mine.yaml:4:.*above 0"):
        read_mapping(mine, columns)
    # a shorter limit: the charting no longer holds into the next morning
    short = build_rows(
        events(
            {"stamp": "2024-03-10T04:00:00Z", "column": "o2_device", "text": "nasal_cannula", "kind": "state", "source": "r:2"},
            {"stamp": "2024-03-10T13:00:00Z", "column": "temp_c", "number": 38.5, "source": "v:2"},
        ),
        infusions(tmp_path),
        Zone(ZONE),
        device_hours=6,
        medications_read=True,
    )
    assert cells(short, "o2_device")[-1] == (2, "08:00", None)
