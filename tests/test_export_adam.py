"""ADCART (outputs.md §1) against the JSON document of the same run: every day
grade, null never 0, ADY without a day 0, dates = infusion date + day, the
course maximum, the parameter codes, and the SAS transport limits with a
round trip through pyreadstat."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from conftest import write_rows

from carscore import report
from carscore.assess import assess_paths, load_engine
from carscore.errors import UsageError
from carscore.export.adam import LABELS, adcart, adcart_csv_table
from carscore.export.dates import course_dates
from carscore.export.episodes import GradedOutput
from carscore.export.parameters import derived_code, grade_parameters
from carscore.export.xpt import ascii_text, chunks, xpt_bytes, xpt_table

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [str(ROOT / "sample_cases" / "tp53_ball_two_infusions.csv"), str(ROOT / "sample_cases" / "synthetic_grades.csv")]
INFUSIONS = ROOT / "tests" / "fixtures" / "export" / "infusions.csv"
GRADE_CODES = {"CRS": ("crs_grade", "crs"), "ICANS": ("icans_grade", "icans"), "CRSLEE": ("crs_grade_lee2014", "crs_lee2014")}
GRADE_CODES["CRES"] = ("cres_grade", "cres")


@pytest.fixture(scope="module")
def run():
    engine = load_engine(None, systems=["lee2014", "cres"])
    a = assess_paths(SAMPLES, engine)
    doc = json.loads(json.dumps(report.build_document(a), default=str))
    dates = course_dates(a, INFUSIONS)
    return a, doc, dates, adcart(a, dates, "CART-01")


def _infusion_dates() -> dict[tuple[str, int], date]:
    rows = pl.read_csv(INFUSIONS, infer_schema=False).iter_rows(named=True)
    return {(r["patient_id"], int(r["infusion"])): date.fromisoformat(r["infusion_datetime"][:10]) for r in rows}


def test_every_day_grade_is_the_json_grade_and_null_is_never_zero(run) -> None:
    _, doc, _, table = run
    nulls = 0
    for patient in doc["patients"]:
        mine = table.filter((pl.col("USUBJID") == patient["patient_id"]) & (pl.col("INFNUM") == patient["infusion"]))
        for code, (key, reason) in GRADE_CODES.items():
            records = mine.filter((pl.col("PARAMCD") == code) & pl.col("DTYPE").is_null())
            assert records["ADYCART"].to_list() == [d["day"] for d in patient["days"]], code
            for record, day in zip(records.iter_rows(named=True), patient["days"], strict=True):
                grade = day[key]
                if grade is None:
                    nulls += 1
                    assert record["AVAL"] is None and record["AVALC"] is None, (code, day["day"])
                else:
                    assert record["AVAL"] == grade and record["AVALC"] == str(grade), (code, day["day"])
                assert record["AREASON"] == day["reasons"][reason]
    assert nulls > 0  # the sample has days without neurological data


def test_ady_has_no_day_zero_and_adt_is_the_infusion_date_plus_the_day(run) -> None:
    _, _, _, table = run
    infused = _infusion_dates()
    for record in table.filter(pl.col("ADYCART").is_not_null()).iter_rows(named=True):
        day = record["ADYCART"]
        assert record["ADY"] == (day + 1 if day >= 0 else day)
        assert record["ADT"] == infused[(record["USUBJID"], record["INFNUM"])] + timedelta(days=day)
    assert 0 not in table["ADY"].to_list()
    assert table.filter(pl.col("ADYCART") == 0)["ADY"].unique().to_list() == [1]


def test_course_maximum_is_the_summary_on_its_first_day(run) -> None:
    _, doc, _, table = run
    for patient in doc["patients"]:
        mine = table.filter((pl.col("USUBJID") == patient["patient_id"]) & (pl.col("INFNUM") == patient["infusion"]))
        for code, (key, _) in GRADE_CODES.items():
            block = mine.filter(pl.col("PARAMCD") == code)
            maximum = block.filter(pl.col("DTYPE") == "MAXIMUM")
            assert maximum.height == 1 and block.row(-1, named=True)["DTYPE"] == "MAXIMUM"  # last of its parameter
            record = maximum.row(0, named=True)
            expected = patient["summary"][key.replace("_grade", "_max_grade", 1)]
            if expected is None:
                assert record["AVAL"] is None and record["AVALC"] is None and record["ADYCART"] is None and record["ADT"] is None
                continue
            first = min(d["day"] for d in patient["days"] if d["day"] >= 0 and d[key] == expected)
            assert (record["AVAL"], record["AVALC"], record["ADYCART"]) == (expected, str(expected), first)
            assert record["AREASON"] is None and record["RULESET"]


def test_records_are_ordered_by_course_parameter_and_day(run) -> None:
    _, _, _, table = run
    order = ["CRS", "ICANS", "CRSLEE", "CRES", "CNSSTAT", "CNSSUB", "BMRESP", "MRDNEG", "CARCOPY"]
    assert table["PARAMCD"].unique(maintain_order=True).to_list() == order
    first = table.filter((pl.col("USUBJID") == "TP53-BALL-01") & (pl.col("INFNUM") == 1))
    codes = first["PARAMCD"].to_list()
    assert codes == sorted(codes, key=order.index)
    days = first.filter((pl.col("PARAMCD") == "CRS") & pl.col("DTYPE").is_null())["ADYCART"].to_list()
    assert days == sorted(days)
    assert table["USUBJID"].unique(maintain_order=True).to_list()[:2] == ["TP53-BALL-01", "SYN-CRS2"]


def test_variables_and_fixed_values(run) -> None:
    a, doc, _, table = run
    assert table.columns == list(LABELS)
    assert set(table["STUDYID"].to_list()) == {"CART-01"}
    crs = table.filter(pl.col("PARAMCD") == "CRS").row(0, named=True)
    assert crs["PARAM"] == "CRS Grade (ASTCT 2019)" and crs["RULESET"] == "astct_crs 2019.1"
    assert table.filter(pl.col("PARAMCD") == "ICANS")["PARAM"][0] == "ICANS Grade (ASTCT 2019)"
    assert table.filter(pl.col("PARAMCD") == "CRES")["PARAM"][0] == "CRES Grade (CARTOX-10)"
    assert {r["RULESET"] for r in table.filter(pl.col("PARAMCD") == "CARCOPY").iter_rows(named=True)} == {None}
    files = {p["patient_id"]: p["file"] for p in doc["patients"]}
    assert all(files[r["USUBJID"]] == r["SRCFILE"] for r in table.iter_rows(named=True))


def test_disease_course_parameters(run) -> None:
    _, doc, _, table = run
    first = next(p for p in doc["patients"] if p["patient_id"] == "TP53-BALL-01" and p["infusion"] == 1)
    days = {d["day"]: d for d in first["days"]}
    mine = table.filter((pl.col("USUBJID") == "TP53-BALL-01") & (pl.col("INFNUM") == 1))
    cns = mine.filter(pl.col("PARAMCD") == "CNSSTAT")
    assert cns.height == sum(1 for d in first["days"] if d["cns_status"] or d["reasons"]["cns"])
    for r in cns.iter_rows(named=True):
        status = days[r["ADYCART"]]["cns_status"]
        assert r["AVALC"] == status and r["AVAL"] == (int(status[-1]) if status else None)
    baseline = cns.filter(pl.col("ADYCART") == -7).row(0, named=True)
    assert (baseline["AVAL"], baseline["AVALC"]) == (3, "CNS-3")
    sub = mine.filter(pl.col("PARAMCD") == "CNSSUB")
    assert sub["AVAL"].null_count() == sub.height and sub.filter(pl.col("ADYCART") == -7)["AVALC"][0] == "CNS-3a"
    mrd = mine.filter(pl.col("PARAMCD") == "MRDNEG")
    for r in mrd.iter_rows(named=True):
        flag = days[r["ADYCART"]]["mrd_negative"]
        assert (r["AVAL"], r["AVALC"]) == ({True: (1, "Y"), False: (0, "N"), None: (None, None)}[flag])
    assert mrd.filter(pl.col("ADYCART") == 40)["AVALC"][0] == "N"
    bm = mine.filter(pl.col("PARAMCD") == "BMRESP")
    assert {r["ADYCART"]: r["AVALC"] for r in bm.iter_rows(named=True)}[20] == "CR"
    car = mine.filter(pl.col("PARAMCD") == "CARCOPY")
    assert car.filter(pl.col("ADYCART") == 18)["AVAL"][0] == 112000 and car["AVALC"].null_count() == car.height


def _two_rows_a_day(tmp_path: Path, source: bool) -> Path:
    rows = [
        {"patient_id": "M1", "infusion": 1, "day": 0, "temp_c": 37.0, "car_copies": 10},
        {"patient_id": "M1", "infusion": 1, "day": 1, "time": "20:00", "temp_c": 38.4, "car_copies": 300},
        {"patient_id": "M1", "infusion": 1, "day": 1, "time": "08:00", "temp_c": 37.1, "car_copies": 500},
        {"patient_id": "M1", "infusion": 1, "day": 2, "temp_c": 36.9},
    ]
    if source:
        for i, r in enumerate(rows):
            r["source"] = f"vitals.csv:{10 + i}"
    return write_rows(tmp_path / "multi.csv", rows)


@pytest.mark.parametrize("source", [False, True])
def test_source_rows_and_records_of_a_day(tmp_path: Path, source: bool) -> None:
    a = assess_paths([str(_two_rows_a_day(tmp_path, source))], load_engine())
    table = adcart(a, course_dates(a, INFUSIONS), "")
    day1 = table.filter((pl.col("PARAMCD") == "CRS") & (pl.col("ADYCART") == 1)).row(0, named=True)
    assert day1["SRCROWS"] == "3;4" and day1["AVAL"] == 1
    assert day1["SRCREC"] == ("vitals.csv:11 | vitals.csv:12" if source else None)
    # the day's highest CAR copies, from both rows; no course date: blank ADT, and STUDYID blank
    car = table.filter(pl.col("PARAMCD") == "CARCOPY")
    assert car.filter(pl.col("ADYCART") == 1)["AVAL"][0] == 500
    assert table["ADT"].null_count() == table.height and table["STUDYID"].null_count() == table.height


def test_csv_writes_whole_numbers_without_a_decimal(run) -> None:
    _, _, _, table = run
    text = report.csv_text(adcart_csv_table(table))
    back = pl.read_csv(text.encode(), infer_schema=False)
    assert ".0" not in "".join(v for v in back["AVAL"].to_list() if v)
    assert back.filter(pl.col("PARAMCD") == "CARCOPY")["AVAL"].str.contains(r"^\d+$").all()
    assert back["ADT"].drop_nulls().str.contains(r"^\d{4}-\d{2}-\d{2}$").all()


# --------------------------------------------------------------------------- parameter codes


def test_builtin_codes_are_those_of_outputs_md() -> None:
    engine = load_engine(None, systems=["all"])
    codes = [p.paramcd for p in grade_parameters(engine.rulesets)]
    assert codes == ["CRS", "ICANS", "CRSLEE", "CRSPENN", "CRSMSK", "CRSCTX", "CRSCTXP", "CRSCTC5", "CRES"]


def _output(name: str, pattern: str, system: str, label: str = "CRS") -> GradedOutput:
    return GradedOutput(name, pattern, 0.0, system, "2020.1", system, label, name)


def test_codes_of_other_systems_are_derived() -> None:
    assert derived_code(_output("crs_grade_foo2020", "crs_*_foo2020", "foo2020")) == "CRSFOO20"
    assert derived_code(_output("crs_grade_ab", "crs_*_ab", "ab")) == "CRSAB"
    assert derived_code(_output("crs_grade_x_y_z", "crs_*_x_y_z", "x_y_z")) == "CRSXYZ"


def _ruleset(ident: str, output: str, pattern: str, label: str):
    from carscore.presentation import OutputView

    view = OutputView(name=output, kind="grade", label=label, summaries=pattern)
    decision = SimpleNamespace(reason_key=ident, outputs=(output,))
    return SimpleNamespace(
        id=ident, version="1.0", system=ident, presentation={output: view}, decisions=[decision], parameters={}
    )


def test_a_code_clash_is_a_usage_error() -> None:
    rulesets = [
        _ruleset("centre_a1", "crs_grade_centre_a1", "crs_*_centre_a1", "Centre A1"),
        _ruleset("centre_a2", "crs_grade_centre_a2", "crs_*_centre_a2", "Centre A2"),
    ]
    with pytest.raises(UsageError, match="CRSCENTR"):
        grade_parameters(rulesets)
    one = grade_parameters(rulesets[:1])[0]
    assert (one.paramcd, one.param) == ("CRSCENTR", "CRS Grade (Centre A1)")


def test_a_rule_file_declares_its_adam_parameter(tmp_path) -> None:
    """The built-in systems' codes are declared in their rule files; a centre's
    system may declare its own, and a wrong declaration is named in its file."""
    from carscore.assess import load_engine
    from carscore.errors import RuleErrors
    from carscore.ruleset import builtin_rules_dir

    codes = [(p.paramcd, p.param) for p in grade_parameters(load_engine(systems=["all"]).rulesets)]
    assert [c for c, _ in codes] == ["CRS", "ICANS", "CRSLEE", "CRSPENN", "CRSMSK", "CRSCTX", "CRSCTXP", "CRSCTC5", "CRES"]
    assert codes[2] == ("CRSLEE", "CRS Grade (Lee 2014)")
    text = (builtin_rules_dir() / "lee2014.yaml").read_text(encoding="utf-8").replace("id: lee2014", "id: centre_lee", 1)
    text = text.replace('cdisc: {paramcd: CRSLEE, param: "CRS Grade (Lee 2014)", order: 10}', "cdisc: {paramcd: crs_lee, param: Lee}")
    (tmp_path / "centre.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleErrors, match="cdisc paramcd is at most 8 capital letters"):
        load_engine([tmp_path / "centre.yaml"], systems=["lee2014"])


# --------------------------------------------------------------------------- SAS transport


def test_ascii_spellings() -> None:
    assert ascii_text("copies/µg ≥ 1 ≤ 2 → 3 × 4 ± 5 – 6 — 7 café") == "copies/ug >= 1 <= 2 -> 3 x 4 +/- 5 - 6 - 7 cafe"


@pytest.mark.parametrize("text", ["word " * 90, "a" * 450, "x " + "y" * 199 + " z", "short", "a b" * 150])
def test_chunks_restore_the_text_joined_with_one_space(text: str) -> None:
    parts = chunks(text)
    assert all(len(p.encode()) <= 200 for p in parts)
    if " " in text[:201] or len(text) <= 200:
        assert " ".join(parts) == text
    else:  # a stretch without a space is cut at byte 200
        assert "".join(parts) == text


def test_chunk_cut_at_the_last_space_before_byte_200() -> None:
    text = "a" * 150 + " " + "b" * 49 + " " + "c" * 10
    parts = chunks(text)
    assert parts == ["a" * 150 + " " + "b" * 49, "c" * 10]  # the space at byte 201 (index 200) is the cut


def test_xpt_round_trip(run, tmp_path: Path) -> None:
    import pyreadstat

    _, _, _, table = run
    fitted, labels = xpt_table(table, LABELS)
    assert "AREASN1" in fitted.columns  # the sample has reasons longer than 200 bytes
    path = tmp_path / "adcart.xpt"
    path.write_bytes(xpt_bytes(table, LABELS, "ADCART", "CAR-T Toxicity and Response by Day", ["ADT"]))
    back, meta = pyreadstat.read_xport(str(path), output_format="polars")
    assert meta.table_name == "ADCART" and meta.file_label == "CAR-T Toxicity and Response by Day"
    assert back.columns == fitted.columns and all(len(c) <= 8 for c in back.columns)
    assert meta.column_names_to_labels["AREASN1"] == "Reason for Value (Part 1)"
    assert all(len(label) <= 40 for label in meta.column_names_to_labels.values())
    assert meta.original_variable_types["ADT"] == "E8601DA10" and back.schema["ADT"] == pl.Date
    assert back["ADT"].to_list() == table["ADT"].to_list()
    parts = [c for c in back.columns if c == "AREASON" or c.startswith("AREASN")]
    for whole, row in zip(table["AREASON"].to_list(), back.select(parts).iter_rows(), strict=True):
        joined = " ".join(p for p in row if p)
        assert joined == ascii_text(whole or ""), whole
    assert back["AVAL"].to_list() == table["AVAL"].to_list()


def test_long_source_records_go_on_in_continuation_variables() -> None:
    records = " | ".join(f"temp_c=vitals.csv:{i}; sbp=vitals.csv:{i + 1}" for i in range(20))
    table = pl.DataFrame({"SRCREC": [records, None, "short"], "AVAL": [1.0, None, 2.0]})
    fitted, labels = xpt_table(table, {"SRCREC": "Source Records", "AVAL": "Analysis Value"})
    parts = [c for c in fitted.columns if c.startswith("SRCR")]
    assert parts[:2] == ["SRCREC", "SRCRC1"] and labels["SRCRC1"] == "Source Records (Part 1)"
    first = fitted.row(0, named=True)
    assert " ".join(first[c] for c in parts if first[c]) == records
    assert all(len(v) <= 200 for c in parts for v in fitted[c].drop_nulls().to_list())
    assert fitted.row(2, named=True)["SRCRC1"] is None and fitted["AVAL"].to_list() == [1.0, None, 2.0]
