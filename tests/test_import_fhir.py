"""The FHIR R4 NDJSON reader and preset (import.md §5 fhir, §3, §7), on small bulk
exports written here, checked through import_sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carscore.errors import RuleErrors
from carscore.importer import import_sources

ZONE = "America/Chicago"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CARSCORE = "urn:carscore:codes"
INFUSIONS = "patient_id,infusion,infusion_datetime,age_years\nP1,1,2024-03-08T10:00,54\n"


def concept(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def quantity(value: float, code: str) -> dict:
    return {"valueQuantity": {"value": value, "unit": code, "system": UCUM, "code": code}}


def obs(rid: str, system: str, code: str, when: str, patient: str = "P1", **fields) -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": concept(system, code),
        "effectiveDateTime": when,
        **fields,
    }


def drug(rid: str, rxnorm: str, patient: str = "P1", **fields) -> dict:
    return {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "medicationCodeableConcept": concept(RXNORM, rxnorm),
        **fields,
    }


def write(folder: Path, name: str, *resources: dict | str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in resources]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(tmp_path: Path, *resources: dict | str, infusions: str = INFUSIONS, mapping: str = "fhir"):
    write(tmp_path / "export", "data.ndjson", *resources)
    inf = tmp_path / "infusions.csv"
    inf.write_text(infusions, encoding="utf-8")
    return import_sources([str(tmp_path / "export")], mapping, str(inf), ZONE)


def cells(imported, *columns: str) -> list[tuple]:
    return [tuple(r) for r in imported.rows.select("day", "time", *columns).iter_rows()]


def column_values(imported, column: str) -> list:
    return [v for v in imported.rows[column].to_list() if v is not None]


# --- Observations -------------------------------------------------------------------------


def test_temperature_in_fahrenheit_by_its_ucum_code_and_source_with_line_and_id(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        {"resourceType": "Patient", "id": "P1", "birthDate": "1970-01-01"},
        "",
        obs(
            "t1",
            LOINC,
            "8310-5",
            "2024-03-10T03:30:00Z",
            valueQuantity={"value": 100.4, "unit": "degrees F", "system": UCUM, "code": "[degF]"},
        ),
    )
    # 03:30 UTC on March 10 is 21:30 on March 9 in Chicago: day 1
    assert cells(imported, "temp_c") == [(1, "21:30", "38")]
    assert imported.rows["source"][0] == "temp_c=data.ndjson:3#Observation/t1"
    assert imported.problems == []


def test_unit_text_is_read_when_the_quantity_has_no_ucum_code(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("c1", LOINC, "1988-5", "2024-03-10T14:00:00Z", valueQuantity={"value": 5.1, "unit": "mg/dL"}),
        obs("c2", LOINC, "1988-5", "2024-03-11T14:00:00Z", valueQuantity={"value": 3, "unit": "stones"}),
    )
    assert column_values(imported, "crp") == ["51"]
    (problem,) = imported.problems
    assert (problem.file, problem.row, problem.column) == ("data.ndjson", 2, "unit") and "stones" in problem.message


def test_effective_period_start_is_the_clinical_time_never_issued(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        {
            **obs("a1", LOINC, "751-8", "x", **quantity(450, "/uL")),
            "effectiveDateTime": None,
            "effectivePeriod": {"start": "2024-03-10T13:00:00-05:00", "end": "2024-03-10T13:05:00-05:00"},
            "issued": "2024-03-11T09:00:00-05:00",
        },
    )
    assert cells(imported, "anc") == [(2, "13:00", "0.45")]


def test_components_are_read_as_their_own_codes(tmp_path: Path) -> None:
    panel = obs(
        "bp",
        LOINC,
        "85354-9",
        "2024-03-10T14:00:00-05:00",
        component=[
            {"code": concept(LOINC, "8480-6"), **quantity(84, "mm[Hg]")},
            {"code": concept(LOINC, "8462-4"), **quantity(40, "mm[Hg]")},
        ],
    )
    spo2 = obs(
        "sat",
        LOINC,
        "59408-5",
        "2024-03-10T14:00:00-05:00",
        **quantity(91, "%"),
        component=[{"code": concept(LOINC, "3151-8"), **quantity(4, "L/min")}],
    )
    device = obs(
        "dev",
        LOINC,
        "107117-4",
        "2024-03-10T14:00:00-05:00",
        valueCodeableConcept=concept(SNOMED, "336623009", "Nasal cannula"),
    )
    imported = run(tmp_path, panel, spo2, device)
    assert cells(imported, "sbp", "o2_device", "o2_flow_lpm") == [
        (2, "14:00", "84", "nasal_cannula", "4"),
        (3, "00:00", None, "nasal_cannula", "4"),  # the device charted holds past midnight
    ]
    # the diastolic component and the saturation itself are codes this mapping does not read
    (note,) = [n for n in imported.notes if "does not read" in n]
    assert "2 Observation values" in note and "http://loinc.org|8462-4" in note and "http://loinc.org|59408-5" in note


def test_carscore_codes_carry_scores_enums_and_booleans(tmp_path: Path) -> None:
    when = "2024-03-10T20:00:00-05:00"
    imported = run(
        tmp_path,
        obs("i1", CARSCORE, "ice_score", when, valueInteger=6),
        obs("i2", CARSCORE, "consciousness", when, valueCodeableConcept=concept(CARSCORE, "awakens_to_voice")),
        obs("i3", CARSCORE, "seizure", when, valueString="None"),
        obs("i4", CARSCORE, "csf_blasts", "2024-03-11T09:00:00-05:00", valueBoolean=True),
        obs("i5", CARSCORE, "car_copies", "2024-03-11T09:00:00-05:00", valueQuantity={"value": 15000, "code": "{copies}/ug"}),
    )
    assert cells(imported, "ice_score", "consciousness", "seizure") == [
        (2, "20:00", "6", "awakens_to_voice", "none"),
        (3, "09:00", None, None, None),
    ]
    assert column_values(imported, "csf_blasts") == ["yes"]
    assert column_values(imported, "car_copies") == ["15000"]
    assert imported.problems == []


def test_mrd_reads_its_method_from_observation_method(tmp_path: Path) -> None:
    mrd = obs(
        "m1",
        CARSCORE,
        "bm_mrd_pct",
        "2024-04-05T09:00:00-05:00",
        valueString="not detected",
        method={"text": "Flow cytometry"},
    )
    odd = obs(
        "m2",
        CARSCORE,
        "bm_mrd_pct",
        "2024-04-06T09:00:00-05:00",
        **quantity(0.01, "%"),
        method=concept(CARSCORE, "karyotype"),
    )
    imported = run(tmp_path, mrd, odd)
    assert cells(imported, "bm_mrd_pct", "mrd_method") == [(28, "09:00", "0", "flow"), (29, "09:00", "0.01", None)]
    (problem,) = imported.problems
    assert problem.column == "method" and problem.value == "karyotype" and "Observation/m2" in problem.message


def test_a_comparator_imports_the_number_and_is_named_in_the_source(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("il", LOINC, "26881-3", "2024-03-10T09:00:00-05:00", valueQuantity={"value": 5, "comparator": "<", "code": "pg/mL"}),
    )
    assert column_values(imported, "il6") == ["5"]
    assert imported.rows["source"][0] == "il6=data.ndjson:1#Observation/il (<)"


def test_results_that_state_no_value_are_counted_and_other_text_is_an_error(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("f1", LOINC, "2276-4", "2024-03-10T09:00:00-05:00", valueString="UNABLE TO REPORT"),
        obs("f2", LOINC, "2276-4", "2024-03-10T10:00:00-05:00", valueString="hemolysed"),
        obs(
            "f3",
            LOINC,
            "2276-4",
            "2024-03-10T11:00:00-05:00",
            valueString="1250",
        ),
    )
    assert column_values(imported, "ferritin") == ["1250"]
    (problem,) = imported.problems
    assert (problem.row, problem.value) == (2, "hemolysed")
    assert any("1 Observation results that state no value" in n for n in imported.notes)


def test_unknown_codes_of_vocabularies_not_read_are_counted(tmp_path: Path) -> None:
    when = "2024-03-10T09:00:00-05:00"
    imported = run(
        tmp_path,
        obs("hr1", LOINC, "8867-4", when, **quantity(110, "/min")),
        obs("hr2", LOINC, "8867-4", when, **quantity(112, "/min")),
        obs("x1", "http://example.org/local", "WEIGHT", when, **quantity(70, "kg")),
        obs("t1", LOINC, "8310-5", when, **quantity(38.2, "Cel")),
    )
    assert column_values(imported, "temp_c") == ["38.2"]
    assert imported.problems == []
    (note,) = [n for n in imported.notes if "does not read" in n]
    assert note.startswith("3 Observation values") and "http://loinc.org|8867-4 (2)" in note


def test_an_unknown_carscore_code_is_an_error_naming_file_line_and_resource(tmp_path: Path) -> None:
    when = "2024-03-10T09:00:00-05:00"
    imported = run(
        tmp_path,
        obs("t1", LOINC, "8310-5", when, **quantity(38.2, "Cel")),
        obs("q1", CARSCORE, "ice_totl", when, valueInteger=8),
        obs("q2", CARSCORE, "vasopressors", when, valueInteger=2),
    )
    assert column_values(imported, "temp_c") == ["38.2"]
    assert [(p.file, p.row, p.column, p.value) for p in imported.problems] == [
        ("data.ndjson", 2, "code", "urn:carscore:codes|ice_totl"),
        ("data.ndjson", 3, "code", "urn:carscore:codes|vasopressors"),
    ]
    assert "Observation/q1" in imported.problems[0].message


def test_an_unknown_value_of_an_enum_is_an_error_and_the_record_is_skipped(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("s1", CARSCORE, "seizure", "2024-03-10T09:00:00-05:00", valueCodeableConcept=concept(CARSCORE, "several")),
        obs("c1", CARSCORE, "consciousness", "2024-03-10T09:00:00-05:00", valueString="drowsy"),
        obs("t1", LOINC, "8310-5", "2024-03-10T10:00:00-05:00", **quantity(37, "Cel")),
    )
    assert "seizure" not in imported.rows.columns and "consciousness" not in imported.rows.columns
    assert sorted((p.row, p.column, p.value) for p in imported.problems) == [(1, "value", "several"), (2, "value", "drowsy")]


def test_an_unknown_oxygen_device_is_an_error_that_ends_the_device_before_it(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("d1", LOINC, "107117-4", "2024-03-10T08:00:00-05:00", valueCodeableConcept=concept(SNOMED, "336602003")),
        obs("d2", LOINC, "107117-4", "2024-03-10T10:00:00-05:00", valueCodeableConcept=concept(SNOMED, "999999")),
        obs("t1", LOINC, "8310-5", "2024-03-10T11:00:00-05:00", **quantity(38.3, "Cel")),
    )
    # the unreadable charting makes no row of its own (the core's rule)
    assert cells(imported, "temp_c", "o2_device") == [(2, "08:00", None, "facemask"), (2, "11:00", "38.3", None)]
    (problem,) = imported.problems
    assert (problem.row, problem.value) == (2, "999999")


def test_statuses_drop_or_skip_records(tmp_path: Path) -> None:
    when = "2024-03-10T09:00:00-05:00"
    imported = run(
        tmp_path,
        {**obs("a", LOINC, "8310-5", when, **quantity(39.0, "Cel")), "status": "entered-in-error"},
        {**obs("b", LOINC, "8310-5", when, **quantity(39.1, "Cel")), "status": "cancelled"},
        {**obs("c", LOINC, "8310-5", when, **quantity(39.2, "Cel")), "status": "preliminary"},
        {**obs("d", LOINC, "8310-5", when, **quantity(39.3, "Cel")), "status": "registered"},
        {**obs("e", LOINC, "8310-5", when, **quantity(38.1, "Cel")), "status": "amended"},
    )
    assert column_values(imported, "temp_c") == ["38.1"]
    (note,) = [n for n in imported.notes if n.startswith("Observation:")]
    assert "2 dropped" in note and "2 skipped" in note and "preliminary 1" in note and "registered 1" in note


def test_a_repeated_id_keeps_its_highest_version_else_its_latest_update(tmp_path: Path) -> None:
    when = "2024-03-10T09:00:00-05:00"
    imported = run(
        tmp_path,
        {**obs("v", LOINC, "8310-5", when, **quantity(39.5, "Cel")), "meta": {"versionId": "10"}},
        {**obs("v", LOINC, "8310-5", when, **quantity(37.5, "Cel")), "meta": {"versionId": "9"}},
        {**obs("u", LOINC, "718-7", when, **quantity(9.1, "g/dL")), "meta": {"lastUpdated": "2024-03-10T16:00:00Z"}},
        {**obs("u", LOINC, "718-7", when, **quantity(8.1, "g/dL")), "meta": {"lastUpdated": "2024-03-10T12:00:00-05:00"}},
        # a later version entered in error retracts the record
        {**obs("w", LOINC, "777-3", when, **quantity(20, "10*3/uL")), "meta": {"versionId": "1"}},
        {**obs("w", LOINC, "777-3", when, **quantity(20, "10*3/uL")), "meta": {"versionId": "2"}, "status": "entered-in-error"},
    )
    assert column_values(imported, "temp_c") == ["39.5"]
    # 12:00 -05:00 is 17:00 UTC, later than 16:00 UTC
    assert column_values(imported, "hemoglobin") == ["81"]
    assert "platelets" not in imported.rows.columns
    assert any("3 earlier versions" in n for n in imported.notes)


def test_identical_records_under_two_ids_are_one(tmp_path: Path) -> None:
    when = "2024-03-10T09:00:00-05:00"
    imported = run(
        tmp_path,
        obs("a", LOINC, "8310-5", when, **quantity(38.4, "Cel")),
        obs("b", LOINC, "8310-5", when, **quantity(38.4, "Cel")),
    )
    assert column_values(imported, "temp_c") == ["38.4"]
    assert any("1 identical records" in n for n in imported.notes)


def test_a_time_without_offset_is_an_error_and_a_date_alone_has_no_time(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("n1", LOINC, "8310-5", "2024-03-10T09:00:00", **quantity(39, "Cel")),
        obs("n2", LOINC, "11150-0", "2024-03-12", **quantity(3, "%")),
    )
    assert cells(imported, "bm_blasts_pct") == [(4, None, "3")] and "temp_c" not in imported.rows.columns
    (problem,) = imported.problems
    assert (problem.file, problem.row, problem.column) == ("data.ndjson", 1, "time") and "Observation/n1" in problem.message


def test_a_line_that_is_not_json_is_an_error_and_the_rest_is_read(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("t1", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", **quantity(38.6, "Cel")),
        '{"resourceType": "Observation", "id": "broken"',
        obs("t2", LOINC, "8310-5", "2024-03-10T10:00:00-05:00", **quantity(38.9, "Cel")),
    )
    assert column_values(imported, "temp_c") == ["38.6", "38.9"]
    assert imported.rows["source"][1] == "temp_c=data.ndjson:3#Observation/t2"
    (problem,) = imported.problems
    assert (problem.file, problem.row) == ("data.ndjson", 2)


def test_a_field_of_an_unexpected_json_type_is_read_as_absent(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("t1", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", valueQuantity={"value": "38.6", "code": "Cel"}),
        obs("t2", LOINC, "8310-5", "2024-03-10T10:00:00-05:00", **quantity(38.9, "Cel")),
    )
    assert column_values(imported, "temp_c") == ["38.9"]
    assert any("unexpected JSON type" in n for n in imported.notes)


def test_every_ndjson_file_of_a_folder_is_read_whatever_types_it_mixes(tmp_path: Path) -> None:
    export = tmp_path / "export"
    write(export / "a", "Observation.ndjson", obs("t1", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", **quantity(38.6, "Cel")))
    write(
        export / "b",
        "mixed.ndjson",
        {"resourceType": "Encounter", "id": "e"},
        drug("m", "612865", effectiveDateTime="2024-03-10T10:00:00-05:00"),
    )
    (export / "readme.txt").write_text("not data", encoding="utf-8")
    inf = tmp_path / "infusions.csv"
    inf.write_text(INFUSIONS, encoding="utf-8")
    imported = import_sources([str(export)], "fhir", str(inf), ZONE)
    assert cells(imported, "temp_c", "tocilizumab") == [(2, "09:00", "38.6", None), (2, "10:00", None, "yes")]
    assert any("Encounter (1)" in n for n in imported.notes)


def test_records_of_a_patient_not_in_the_infusions_file_are_skipped(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        obs("t1", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", **quantity(38.6, "Cel")),
        obs("t2", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", patient="P9", **quantity(38.6, "Cel")),
        {**obs("t3", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", **quantity(38.6, "Cel")), "subject": {"reference": "Group/1"}},
    )
    assert imported.rows["patient_id"].to_list() == ["P1"]
    assert any("not in the infusions file" in n and "P9 (1)" in n for n in imported.notes)
    assert any("not a Patient reference" in n for n in imported.notes)


# --- MedicationAdministration ---------------------------------------------------------------


def test_drips_run_over_their_effective_period_and_count_together(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        drug("ne", "7512", effectivePeriod={"start": "2024-03-10T20:00:00-05:00", "end": "2024-03-11T03:00:00-05:00"}),
        drug("epi", "3992", effectivePeriod={"start": "2024-03-10T21:00:00-05:00", "end": "2024-03-10T22:00:00-05:00"}),
        drug("vp", "11149", effectivePeriod={"start": "2024-03-10T21:30:00-05:00", "end": "2024-03-10T23:00:00-05:00"}),
        {
            **drug("x", "8163", effectivePeriod={"start": "2024-03-10T21:00:00-05:00", "end": "2024-03-10T22:00:00-05:00"}),
            "status": "not-done",
        },
        drug("push", "8163", effectiveDateTime="2024-03-10T21:15:00-05:00"),
        obs("t1", LOINC, "8310-5", "2024-03-10T21:45:00-05:00", **quantity(39.1, "Cel")),
    )
    by_time = {(d, t): (v, vp) for d, t, v, vp in cells(imported, "vasopressors", "vasopressin")}
    assert by_time[(2, "21:45")] == ("2", "yes")  # norepinephrine and epinephrine; vasopressin apart
    assert by_time[(2, "22:00")] == ("1", "yes")  # epinephrine stopped: [start, end)
    assert by_time[(3, "00:00")] == ("1", "no")  # the drip runs past midnight
    assert by_time[(3, "03:00")] == ("0", "no")
    assert (2, "21:15") not in by_time  # a bolus is not a running vasopressor
    assert any("boluses" in n for n in imported.notes)


def test_consecutive_administrations_of_one_agent_are_one_run(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        drug(
            "b1",
            "7512",
            effectivePeriod={"start": "2024-03-10T10:00:00-05:00", "end": "2024-03-10T12:00:00-05:00"},
            request={"reference": "MedicationRequest/r"},
        ),
        drug(
            "b2",
            "7512",
            effectivePeriod={"start": "2024-03-10T12:00:00-05:00", "end": "2024-03-10T14:00:00-05:00"},
            request={"reference": "MedicationRequest/r"},
        ),
        obs("t1", LOINC, "8310-5", "2024-03-10T13:00:00-05:00", **quantity(38.1, "Cel")),
    )
    assert [(t, v) for _, t, v in cells(imported, "vasopressors")] == [
        ("10:00", "1"),
        ("12:00", "1"),
        ("13:00", "1"),
        ("14:00", "0"),
    ]


def test_a_period_that_ends_before_it_starts_is_named_and_read_from_its_start(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        drug("ne", "7512", effectivePeriod={"start": "2024-03-10T20:00:00-05:00", "end": "2024-03-10T19:00:00-05:00"}),
        drug("epi", "3992", effectivePeriod={"start": "2024-03-10T21:00:00-05:00", "end": "2024-03-10T21:00:00-05:00"}),
    )
    (problem,) = imported.problems
    assert (problem.row, problem.column, problem.value) == (1, "effectivePeriod.end", "2024-03-10T19:00:00-05:00")
    assert cells(imported, "vasopressors")[0] == (2, "20:00", "1")
    assert (2, "21:00", "2") not in cells(imported, "vasopressors")  # a period of no length does not run


def test_drugs_given_and_the_indication_of_corticosteroids(tmp_path: Path) -> None:
    def steroid(rid: str, when: str, *reasons: dict) -> dict:
        given = drug(rid, "3264", effectiveDateTime=when)
        return {**given, "reasonCode": list(reasons)} if reasons else given

    imported = run(
        tmp_path,
        steroid("s1", "2024-03-10T08:00:00-05:00"),
        steroid("s2", "2024-03-11T08:00:00-05:00", concept("http://hl7.org/fhir/sid/icd-10-cm", "D89.832")),
        steroid("s3", "2024-03-12T08:00:00-05:00", {"text": "ICANS grade 2"}),
        steroid("s4", "2024-03-13T08:00:00-05:00", {"text": "premedication before platelets"}),
        steroid("s5", "2024-03-14T08:00:00-05:00", concept(SNOMED, "235595009", "Graft-versus-host disease")),
        drug("a1", "161", effectiveDateTime="2024-03-10T09:00:00-05:00"),
        drug("k1", "72435", effectivePeriod={"start": "2024-03-10T10:00:00-05:00", "end": "2024-03-10T10:30:00-05:00"}),
        {**drug("x1", "612865", effectiveDateTime="2024-03-10T11:00:00-05:00"), "status": "entered-in-error"},
    )
    assert [(d, t) for d, t, v in cells(imported, "corticosteroids") if v] == [(2, "08:00"), (3, "08:00"), (4, "08:00")]
    assert cells(imported, "antipyretics", "other_anticytokine")[1:3] == [(2, "09:00", "yes", None), (2, "10:00", None, "yes")]
    assert "tocilizumab" not in imported.rows.columns
    assert any("2 administrations given for another stated reason" in n for n in imported.notes)


def test_a_drug_named_through_a_medication_resource_or_a_contained_one(tmp_path: Path) -> None:
    outside = {
        "resourceType": "MedicationAdministration",
        "id": "r1",
        "status": "completed",
        "subject": {"reference": "Patient/P1"},
        "medicationReference": {"reference": "Medication/toci"},
        "effectiveDateTime": "2024-03-10T11:00:00-05:00",
    }
    inside = {
        **outside,
        "id": "r2",
        "medicationReference": {"reference": "#m"},
        "contained": [{"resourceType": "Medication", "id": "m", "code": concept(RXNORM, "161")}],
        "effectiveDateTime": "2024-03-10T12:00:00-05:00",
    }
    imported = run(tmp_path, outside, inside, {"resourceType": "Medication", "id": "toci", "code": concept(RXNORM, "612865")})
    assert cells(imported, "tocilizumab", "antipyretics") == [(2, "11:00", "yes", None), (2, "12:00", None, "yes")]


def test_no_medication_resources_means_no_vasopressor_count(tmp_path: Path) -> None:
    imported = run(tmp_path, obs("t1", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", **quantity(38.6, "Cel")))
    assert cells(imported, "vasopressors", "vasopressin") == [(2, "09:00", None, None)]


# --- Oxygen intervals: Procedure and DeviceUseStatement -----------------------------------------


def procedure(rid: str, snomed: str, start: str, end: str | None) -> dict:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "Procedure",
        "id": rid,
        "status": "completed",
        "subject": {"reference": "Patient/P1"},
        "code": concept(SNOMED, snomed),
        "performedPeriod": period,
    }


def test_ventilation_holds_over_its_period_across_days_then_none(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        procedure("niv", "428311008", "2024-03-10T06:00:00-05:00", "2024-03-10T09:00:00-05:00"),
        procedure("imv", "40617009", "2024-03-10T09:00:00-05:00", "2024-03-13T07:00:00-05:00"),
        procedure("lp", "277762005", "2024-03-11T10:00:00-05:00", "2024-03-11T10:30:00-05:00"),
        obs("t1", LOINC, "8310-5", "2024-03-11T20:00:00-05:00", **quantity(38.6, "Cel")),
    )
    rows = cells(imported, "o2_device")
    assert rows[:2] == [(2, "06:00", "bipap"), (2, "09:00", "mechanical_ventilation")]  # a hand-over, no gap
    by_day: dict[int, set] = {}
    for day, _, device in rows:
        by_day.setdefault(day, set()).add(device)
    assert by_day[3] == {"mechanical_ventilation"} and by_day[4] == {"mechanical_ventilation"}
    assert rows[-1] == (5, "07:00", "none")
    assert (3, "20:00", "mechanical_ventilation") in rows  # the fever row carries the device
    assert all(src.startswith("o2_device=data.ndjson:") for src in imported.rows["source"].to_list() if "temp_c" not in src)
    assert any("Procedures with codes this mapping does not read" in n and "277762005" in n for n in imported.notes)


def test_two_devices_at_once_the_more_intensive(tmp_path: Path) -> None:
    statement = {
        "resourceType": "DeviceUseStatement",
        "id": "hf",
        "status": "completed",
        "subject": {"reference": "Patient/P1"},
        "device": {"reference": "Device/hfnc"},
        "timingPeriod": {"start": "2024-03-10T08:00:00-05:00", "end": "2024-03-10T20:00:00-05:00"},
    }
    imported = run(
        tmp_path,
        statement,
        {"resourceType": "Device", "id": "hfnc", "type": concept(SNOMED, "426854004")},
        procedure("imv", "40617009", "2024-03-10T10:00:00-05:00", "2024-03-10T12:00:00-05:00"),
    )
    assert cells(imported, "o2_device") == [
        (2, "08:00", "high_flow_nasal_cannula"),
        (2, "10:00", "mechanical_ventilation"),
        (2, "12:00", "high_flow_nasal_cannula"),
        (2, "20:00", "none"),
    ]
    assert any("two oxygen devices" in n for n in imported.notes)


def test_a_device_use_with_a_contained_device_and_statuses(tmp_path: Path) -> None:
    def statement(rid: str, status: str, start: str, end: str) -> dict:
        return {
            "resourceType": "DeviceUseStatement",
            "id": rid,
            "status": status,
            "subject": {"reference": "Patient/P1"},
            "device": {"reference": "#d"},
            "contained": [{"resourceType": "Device", "id": "d", "type": concept(SNOMED, "427591007")}],
            "timingPeriod": {"start": start, "end": end},
        }

    imported = run(
        tmp_path,
        statement("a", "completed", "2024-03-10T08:00:00-05:00", "2024-03-10T09:00:00-05:00"),
        statement("b", "intended", "2024-03-10T10:00:00-05:00", "2024-03-10T11:00:00-05:00"),
        statement("c", "entered-in-error", "2024-03-10T12:00:00-05:00", "2024-03-10T13:00:00-05:00"),
    )
    assert cells(imported, "o2_device") == [(2, "08:00", "nonrebreather"), (2, "09:00", "none")]


def test_outside_its_intervals_an_interval_source_says_room_air_for_every_patient(tmp_path: Path) -> None:
    infusions = INFUSIONS + "P2,1,2024-03-08T10:00,60\n"
    imported = run(
        tmp_path,
        obs("t1", LOINC, "8310-5", "2024-03-10T07:00:00-05:00", **quantity(37.2, "Cel")),
        procedure("niv", "428311008", "2024-03-10T08:00:00-05:00", "2024-03-10T09:00:00-05:00"),
        obs("t2", LOINC, "8310-5", "2024-03-12T10:00:00-05:00", **quantity(37.4, "Cel")),
        obs("t3", LOINC, "8310-5", "2024-03-10T07:00:00-05:00", patient="P2", **quantity(36.9, "Cel")),
        obs("crp", LOINC, "1988-5", "2024-03-10T07:30:00-05:00", **quantity(12, "mg/L")),
        infusions=infusions,
    )
    rows = [tuple(r) for r in imported.rows.select("patient_id", "day", "time", "o2_device").iter_rows()]
    assert rows == [
        ("P1", 2, "07:00", "none"),
        ("P1", 2, "07:30", None),  # a lab row carries no state
        ("P1", 2, "08:00", "bipap"),
        ("P1", 2, "09:00", "none"),
        ("P1", 4, "10:00", "none"),  # two days after the last interval: still room air
        ("P2", 2, "07:00", "none"),  # a patient without any interval
    ]


def test_device_types_coded_by_carscore_words_and_unknown_ones(tmp_path: Path) -> None:
    def statement(rid: str, code: str, start: str, end: str) -> dict:
        return {
            "resourceType": "DeviceUseStatement",
            "id": rid,
            "status": "completed",
            "subject": {"reference": "Patient/P1"},
            "device": {"reference": f"Device/{rid}"},
            "timingPeriod": {"start": start, "end": end},
        }

    imported = run(
        tmp_path,
        statement("bb", "blow_by", "2024-03-10T04:10:00-05:00", "2024-03-10T12:00:00-05:00"),
        {"resourceType": "Device", "id": "bb", "type": concept(CARSCORE, "blow-by")},
        statement("tent", "x", "2024-03-10T14:00:00-05:00", "2024-03-10T15:00:00-05:00"),
        {"resourceType": "Device", "id": "tent", "type": concept(CARSCORE, "oxygen_tent")},
        statement("pump", "x", "2024-03-10T16:00:00-05:00", "2024-03-10T17:00:00-05:00"),
        {"resourceType": "Device", "id": "pump", "type": concept(SNOMED, "469917007")},
        obs("f", LOINC, "3151-8", "2024-03-10T04:10:00-05:00", **quantity(10, "L/min")),
    )
    assert cells(imported, "o2_device", "o2_flow_lpm") == [(2, "04:10", "blow_by", "10"), (2, "12:00", "none", None)]
    (problem,) = imported.problems
    assert (problem.row, problem.column, problem.value) == (3, "code", "urn:carscore:codes|oxygen_tent")  # the statement
    assert any("DeviceUseStatements with codes this mapping does not read" in n and "469917007" in n for n in imported.notes)


# --- the mapping file -------------------------------------------------------------------


def test_a_centre_mapping_reads_its_own_codes(tmp_path: Path) -> None:
    centre = tmp_path / "centre.yaml"
    centre.write_text(
        "mapping: centre\n"
        "extends: fhir\n"
        "observations:\n"
        "  loinc:\n"
        '    "8310-5": temp_c\n'
        "  http://hospital.example/codes:\n"
        '    TEMPF: {column: temp_c, unit: "[degF]"}\n'
        "    NEURO:\n"
        "      column: consciousness\n"
        '      values: {sleepy: awakens_to_voice, "http://hospital.example/answers|U": unarousable}\n',
        encoding="utf-8",
    )
    local = "http://hospital.example/codes"
    imported = run(
        tmp_path,
        obs("f", local, "TEMPF", "2024-03-10T09:00:00-05:00", valueInteger=102),
        obs("n1", local, "NEURO", "2024-03-10T10:00:00-05:00", valueString="Sleepy"),
        obs(
            "n2",
            local,
            "NEURO",
            "2024-03-10T11:00:00-05:00",
            valueCodeableConcept=concept("http://hospital.example/answers", "U"),
        ),
        mapping=str(centre),
    )
    assert cells(imported, "temp_c", "consciousness") == [
        (2, "09:00", "38.89", None),
        (2, "10:00", None, "awakens_to_voice"),
        (2, "11:00", None, "unarousable"),
    ]


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ('observations:\n  loinc:\n    "8310-5": temperature\n', (5, 15), "not a contract column"),
        ('observations:\n  lonic:\n    "8310-5": temp_c\n', (4, 3), "unknown code system 'lonic'"),
        ('devices:\n  snomed:\n    "1": oxygen_tent\n', (5, 10), "not an o2_device value"),
        ('medications:\n  rxnorm:\n    "7512": {column: vasopressors}\n', (5, 13), "needs 'agent'"),
        ('medications:\n  rxnorm:\n    "3264": {column: corticosteroids, indication: gvhd}\n', (5, 51), "no indication 'gvhd'"),
        ("observations:\n  carscore:\n    day: day\n", (5, 10), "cannot be read from here"),
    ],
)
def test_mapping_mistakes_are_named_at_file_line_and_column(
    tmp_path: Path, body: str, where: tuple[int, int], words: str
) -> None:
    centre = tmp_path / "centre.yaml"
    centre.write_text("mapping: centre\nextends: fhir\n" + body, encoding="utf-8")
    with pytest.raises(RuleErrors) as caught:
        run(tmp_path, obs("t1", LOINC, "8310-5", "2024-03-10T09:00:00-05:00", **quantity(38.6, "Cel")), mapping=str(centre))
    (error,) = caught.value.errors
    assert (error.file, error.line, error.col) == (str(centre), *where) and words in error.message


# --- the shared story (tests/fixtures/import) ----------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures" / "import"


def _cell(value: str | None) -> str | None:
    """Cells compared as the contract reads them: numbers by value (39 and 39.0 are one)."""
    if value is None or value == "":
        return None
    try:
        return repr(round(float(value), 6))
    except ValueError:
        return value


@pytest.mark.skipif(not (FIXTURES / "fhir").is_dir(), reason="the shared import fixtures are not present")
def test_the_fhir_fixture_tells_the_expected_story() -> None:
    import polars as pl

    imported = import_sources([str(FIXTURES / "fhir")], "fhir", str(FIXTURES / "infusions.csv"), ZONE)
    expected = pl.read_csv(FIXTURES / "expected_wide.csv", infer_schema=False)
    got = imported.rows.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in expected.columns if c not in imported.rows.columns]
    ).select([pl.col(c).cast(pl.String) for c in expected.columns])

    def rows(frame: pl.DataFrame) -> list[tuple]:
        return sorted((tuple(_cell(v) for v in row) for row in frame.iter_rows()), key=repr)

    assert rows(got) == rows(expected)
    # bad_records.md, fhir/: the errors, by file and line
    assert sorted((p.file, p.row) for p in imported.problems) == [
        ("Observation.ndjson", 41),  # a time without an offset
        ("Observation.ndjson", 98),  # 2024-05-32
        ("Observation.ndjson", 158),  # urn:carscore:codes icans_grade
        ("Observation.ndjson", 162),  # CRP in nmol/L
    ]
    notes = "\n".join(imported.notes)
    assert "1 earlier versions" in notes and "preliminary 1" in notes and "http://loinc.org|8867-4 (45)" in notes


def test_a_mapping_extending_the_preset_adds_a_code_and_keeps_the_others(tmp_path: Path) -> None:
    mine = tmp_path / "my_fhir.yaml"
    mine.write_text('mapping: my_fhir\nextends: fhir\nobservations:\n  loinc:\n    "8331-1": temp_c\n', encoding="utf-8")
    imported = run(
        tmp_path,
        obs("oral", LOINC, "8331-1", "2024-03-10T15:00:00Z", **quantity(38.6, "Cel")),
        obs("core", LOINC, "8310-5", "2024-03-10T16:00:00Z", **quantity(37.1, "Cel")),
        mapping=str(mine),
    )
    assert cells(imported, "temp_c") == [(2, "10:00", "38.6"), (2, "11:00", "37.1")]


def test_the_age_at_infusion_comes_from_the_patients_birth_date_when_the_infusions_give_none(tmp_path: Path) -> None:
    imported = run(
        tmp_path,
        {"resourceType": "Patient", "id": "P1", "birthDate": "2015-03-09"},
        obs("t1", LOINC, "8310-5", "2024-03-10T15:00:00Z", **quantity(38.5, "Cel")),
        infusions="patient_id,infusion,infusion_datetime\nP1,1,2024-03-08T10:00\n",
    )
    # born 9 March 2015, infused 8 March 2024: 8 completed years (a child: CAPD, not ICE)
    assert imported.rows["age_years"].to_list()[0] == 8.0
