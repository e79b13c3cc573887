"""Importing a long export and grading it gives the grades of the same story
written as a wide CSV (tests/fixtures/import/story.md), for every preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from carscore.assess import assess_intake, load_engine
from carscore.importer import import_sources
from carscore.intake import read_text
from carscore.report import day_rows

FIXTURES = Path(__file__).parent / "fixtures" / "import"
PRESETS = ["clif", "fhir", "sdtm", "epic", "redcap"]

# story.md: the ASTCT grades (CRS, ICANS) of each course and day
STORY = {
    ("P1", 1): {0: (0, 0), 1: (3, 0), 2: (3, 0), 3: (2, 1), 4: (1, 0), 5: (0, 0), 7: (None, None)},
    ("P2", 1): {-1: (0, None), 0: (0, 0), 1: (0, 0), 2: (4, 0), 3: (3, 0), 4: (0, 0), 5: (0, 0), 39: (0, None)},
    ("P2", 2): {0: (0, 0), 1: (1, 0), 2: (0, 0)},
    ("P3", 1): {0: (0, 0), 1: (1, 1), 2: (2, 3), 3: (0, 1), 4: (0, 1), 5: (0, 0)},
}


def grades(csv_text: str) -> dict[tuple[str, int], dict[int, tuple]]:
    engine = load_engine()
    assessment = assess_intake(read_text(csv_text, "rows.csv"), engine)
    courses = {c: (p, i) for c, p, i in assessment.intake.courses.select("_course", "patient_id", "infusion").iter_rows()}
    return {courses[c]: {d["day"]: (d["crs_grade"], d["icans_grade"]) for d in days} for c, days in day_rows(assessment).items()}


def test_the_wide_story_grades_as_story_md_says() -> None:
    assert grades((FIXTURES / "expected_wide.csv").read_text(encoding="utf-8")) == STORY


@pytest.mark.parametrize("preset", PRESETS)
def test_an_imported_export_grades_as_the_story(preset: str) -> None:
    from carscore.importer.mapping import preset_names

    if preset not in preset_names():
        pytest.skip(f"no {preset} preset")
    imported = import_sources([str(FIXTURES / preset)], preset, str(FIXTURES / "infusions.csv"), "America/Chicago")
    assert grades(imported.rows.write_csv()) == STORY


@pytest.mark.parametrize("preset", ["clif", "sdtm"])
def test_ages_come_from_the_sources_birth_dates_when_the_infusions_give_none(preset: str, tmp_path: Path) -> None:
    lines = (FIXTURES / "infusions.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name in ("patient_id", "infusion", "infusion_datetime")]
    bare = tmp_path / "infusions.csv"
    bare.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n", encoding="utf-8")
    with_ages = import_sources([str(FIXTURES / preset)], preset, str(FIXTURES / "infusions.csv"), "America/Chicago").rows
    from_births = import_sources([str(FIXTURES / preset)], preset, str(bare), "America/Chicago").rows
    assert from_births["age_years"].to_list() == with_ages["age_years"].to_list()
