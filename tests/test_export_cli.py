"""carscore export and cohort --rates on the command line: golden files for the
sample cases, the CLI output equal to the library's, infusion dates that are
missing or bad (named, blank, never wrong), formats by extension, and exit codes.

To rewrite the golden files after an intended change:

    CARSCORE_UPDATE_GOLDEN=1 python -m pytest tests/test_export_cli.py -k golden
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import write_rows
from typer.testing import CliRunner

from carscore.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "export"
INFUSIONS = "tests/fixtures/export/infusions.csv"
UPDATE_GOLDEN = os.environ.get("CARSCORE_UPDATE_GOLDEN") == "1"
EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "160", "NO_COLOR": "1"})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


GOLDEN_RUNS = {
    "adam.csv": ["export", "sample_cases", "--to", "adam", "--infusions", INFUSIONS, "--studyid", "CART-01"],
    "cibmtr.csv": ["export", "sample_cases", "--to", "cibmtr", "--infusions", INFUSIONS],
    "table2.md": ["export", "sample_cases", "--to", "table2", "--systems", "lee2014,cres"],
    "table2.csv": ["export", "sample_cases", "--to", "table2", "--systems", "lee2014,cres", "-o", "-"],
    "rates.csv": ["cohort", "sample_cases", "--format", "csv", "--rates"],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_golden(name: str, tmp_path: Path) -> None:
    args = list(GOLDEN_RUNS[name])
    if name == "table2.csv":
        args[-1] = str(tmp_path / "table2.csv")
    result = cli(*args)
    assert result.exit_code == EXIT_OK, result.stderr
    assert result.stderr == ""
    text = (tmp_path / "table2.csv").read_text(encoding="utf-8") if name == "table2.csv" else result.stdout
    golden = GOLDEN / name
    if UPDATE_GOLDEN:
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing: run with CARSCORE_UPDATE_GOLDEN=1 to create it"
    assert text == golden.read_text(encoding="utf-8")


def test_cli_adam_is_the_library_table() -> None:
    from carscore import report
    from carscore.assess import assess_paths, load_engine
    from carscore.export.adam import adcart, adcart_csv_table
    from carscore.export.dates import course_dates

    a = assess_paths(["sample_cases"], load_engine())
    library = report.csv_text(adcart_csv_table(adcart(a, course_dates(a, INFUSIONS), "")))
    assert cli("export", "sample_cases", "--to", "adam", "--infusions", INFUSIONS).stdout == library


def _infusions(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    return write_rows(tmp_path / "inf.csv", [{"patient_id": p, "infusion": i, "infusion_datetime": d} for p, i, d in rows])


def _dates(stdout: str) -> dict[str, set[str]]:
    table = pl.read_csv(io.BytesIO(stdout.encode()), infer_schema=False)
    return {
        p: set(table.filter(pl.col("patient_id") == p)["infusion_date"].fill_null("").to_list())
        for p in table["patient_id"].unique()
    }


def test_a_course_without_an_infusions_row_gets_blank_dates_and_a_warning(tmp_path: Path) -> None:
    inf = _infusions(tmp_path, [("SYN-CRS2", "1", "2024-02-28"), ("SYN-CRS3", "1", "2024-03-01")])
    result = cli("export", "sample_cases/synthetic_grades.csv", "--to", "ebmt", "--infusions", str(inf))
    assert result.exit_code == EXIT_OK, result.stderr
    assert "warning: patient SYN-CRS4 infusion 1" in result.stderr and str(inf) in result.stderr
    assert _dates(result.stdout) == {"SYN-CRS2": {"2024-02-28"}, "SYN-CRS3": {"2024-03-01"}, "SYN-CRS4": {""}, "SYN-ICANS": {""}}


def test_a_bad_infusions_row_is_named_its_course_left_blank_and_exit_1(tmp_path: Path) -> None:
    inf = _infusions(
        tmp_path,
        [
            ("SYN-CRS2", "1", "2024-02-30"),
            ("SYN-CRS3", "1", "2024-03-01"),
            ("SYN-CRS4", "1", "2024-03-02"),
            ("SYN-CRS4", "1", "2024-03-09"),
        ]
        + [("SYN-ICANS", "1", "2024-04-02")],
    )
    result = cli("export", "sample_cases/synthetic_grades.csv", "--to", "cibmtr", "--infusions", str(inf))
    assert result.exit_code == EXIT_DATA
    assert f"{inf}, row 2, column infusion_datetime" in result.stderr and "'2024-02-30'" in result.stderr
    assert "patient SYN-CRS4 infusion 1 is listed twice" in result.stderr
    # the bad date and the two candidate dates are blank, never a guess; the rest is exported
    assert _dates(result.stdout) == {"SYN-CRS2": {""}, "SYN-CRS3": {"2024-03-01"}, "SYN-CRS4": {""}, "SYN-ICANS": {"2024-04-02"}}


def test_an_offset_needs_the_timezone_and_gives_the_local_date(tmp_path: Path) -> None:
    inf = _infusions(tmp_path, [("SYN-CRS2", "1", "2024-03-01T03:30:00Z")])
    args = ["export", "sample_cases/synthetic_grades.csv", "--to", "cibmtr", "--infusions", str(inf)]
    refused = cli(*args)
    assert refused.exit_code == EXIT_USAGE and "--timezone" in refused.stderr
    result = cli(*args, "--timezone", "America/Chicago")
    assert _dates(result.stdout)["SYN-CRS2"] == {"2024-02-29"}  # 21:30 the evening before, in Chicago


def test_without_infusions_every_date_is_blank(tmp_path: Path) -> None:
    result = cli("export", "sample_cases/synthetic_grades.csv", "--to", "adam")
    assert result.exit_code == EXIT_OK and "no --infusions" in result.stderr
    table = pl.read_csv(io.BytesIO(result.stdout.encode()), infer_schema=False)
    assert table["ADT"].null_count() == table.height
    # only a course maximum that is null has no day
    undated = table.filter(pl.col("ADY").is_null())
    assert undated.height == 3 and set(undated["DTYPE"]) == {"MAXIMUM"} and undated["AVAL"].null_count() == 3


@pytest.mark.parametrize(("shape", "name"), [("adam", "x.md"), ("cibmtr", "x.xpt"), ("table2", "x.parquet"), ("ebmt", "x")])
def test_an_extension_the_shape_lacks_is_a_usage_error(shape: str, name: str, tmp_path: Path) -> None:
    result = cli("export", "sample_cases", "--to", shape, "-o", str(tmp_path / name))
    assert result.exit_code == EXIT_USAGE and f"--to {shape} writes" in result.stderr
    assert not (tmp_path / name).exists()


def test_xpt_and_parquet_files(tmp_path: Path) -> None:
    import pyreadstat

    for name in ("adcart.xpt", "adcart.parquet", "cibmtr.parquet"):
        shape = "cibmtr" if name.startswith("cibmtr") else "adam"
        result = cli("export", "sample_cases", "--to", shape, "--infusions", INFUSIONS, "-o", str(tmp_path / name))
        assert result.exit_code == EXIT_OK, result.stderr
    back, meta = pyreadstat.read_xport(str(tmp_path / "adcart.xpt"), output_format="polars")
    parquet = pl.read_parquet(tmp_path / "adcart.parquet")
    assert back.height == parquet.height and meta.table_name == "ADCART"
    assert {c: str(t) for c, t in parquet.schema.items() if c in ("INFNUM", "ADY", "ADYCART", "AVAL", "ADT")} == {
        "INFNUM": "Int64",
        "AVAL": "Float64",
        "ADT": "Date",
        "ADY": "Int64",
        "ADYCART": "Int64",
    }
    registry = pl.read_parquet(tmp_path / "cibmtr.parquet")
    assert registry.schema["infusion_date"] == pl.Date and registry.height == 12


def test_xpt_without_pyreadstat_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyreadstat", None)
    result = cli("export", "sample_cases", "--to", "adam", "-o", str(tmp_path / "a.xpt"))
    assert result.exit_code == EXIT_USAGE and "pip install 'carscore[xpt]'" in result.stderr


def test_export_after_an_import(tmp_path: Path) -> None:
    fixtures = ROOT / "tests" / "fixtures" / "import"
    args = ["export", str(fixtures / "clif"), "--from", "clif", "--infusions", str(fixtures / "infusions.csv")]
    result = cli(*args, "--timezone", "America/Chicago", "--to", "adam")
    assert result.exit_code == EXIT_DATA  # the fixture holds bad records on purpose, each named once
    assert result.stderr.count("clif_labs.csv, row 7") == 1
    table = pl.read_csv(io.BytesIO(result.stdout.encode()), infer_schema=False)
    first = table.filter((pl.col("USUBJID") == "P1") & (pl.col("PARAMCD") == "CRS") & (pl.col("ADYCART") == "1")).row(
        0, named=True
    )
    assert first["ADT"] == "2024-03-09" and first["SRCREC"].startswith("temp_c=clif_vitals.csv:")


def test_cohort_rates_csv_equals_the_cohort_json() -> None:
    rates = pl.read_csv(io.BytesIO(cli("cohort", "sample_cases", "--format", "csv", "--rates").stdout.encode()))
    doc = json.loads(cli("cohort", "sample_cases", "--format", "json").stdout)["cohort"]
    assert rates.columns == ["key", "label", "count", "n", "rate", "ci_low", "ci_high"]
    by_key = {r["key"]: r for r in rates.iter_rows(named=True)}
    for key, value in doc.items():
        if isinstance(value, dict) and "count" in value:
            assert (by_key[key]["count"], by_key[key]["n"], by_key[key]["rate"]) == (value["count"], value["n"], value["rate"])
    for k, count in doc["crs_grades"].items():
        assert (by_key[f"crs_grades_{k}"]["count"], by_key[f"crs_grades_{k}"]["n"]) == (count, doc["crs_any"]["n"])


@pytest.mark.parametrize("extra", [["--format", "json"], ["--format", "csv", "--days"]])
def test_rates_needs_csv_without_days(extra: list[str]) -> None:
    result = cli("cohort", "sample_cases", "--rates", *extra)
    assert result.exit_code == EXIT_USAGE and "--rates" in result.stderr
