"""FHIR R4 Bulk Data NDJSON: Encounter -> encounters, Observation (PHQ-9 / GAD-7 by LOINC through
ref_instruments) -> assessments, EpisodeOfCare (+ Coverage, Consent, Condition) -> enrollments."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from conftest import REPO_ROOT, write_csv
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.fhir import resource_of
from pipelines.ingest.load import load_drop
from pipelines.ingest.readers import discover, read_parts
from pipelines.warehouse.reference import seed_reference

CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"


def ndjson(path: Path, resources: list[dict], blank_line_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in resources]
    if blank_line_after is not None:
        lines.insert(blank_line_after, "")
    path.write_text("\n".join(lines) + "\n")
    return path


def ref(kind: str, id_: str) -> dict:
    return {"reference": f"{kind}/{id_}"}


def encounter(id_, patient, start, code=None, system=CPT, status="finished", participants=()):
    r = {"resourceType": "Encounter", "id": id_, "status": status, "subject": ref("Patient", patient),
         "period": {"start": start}, "participant": list(participants)}
    if code:
        r["type"] = [{"text": "visit"}, {"coding": [{"system": "http://snomed.info/sct", "code": "185349003"},
                                                     {"system": system, "code": code}]}]
    return r


def observation(id_, patient, loinc, when, **value):
    return {"resourceType": "Observation", "id": id_, "status": value.pop("status", "final"),
            "code": {"coding": [{"system": LOINC, "code": loinc}]}, "subject": ref("Patient", patient),
            **({"effectiveDateTime": when} if when else {}), **value}


def episode(id_, patient, start, end=None, program="cocm", billing=None, care_manager="CM1", diagnoses=()):
    r = {"resourceType": "EpisodeOfCare", "id": id_, "status": "active",
         "type": [{"coding": [{"system": "http://example.org/program", "code": program}]}],
         "patient": ref("Patient", patient), "managingOrganization": ref("Organization", "F1"),
         "period": {"start": start, **({"end": end} if end else {})}, "careManager": ref("Practitioner", care_manager),
         "diagnosis": [{"condition": ref("Condition", c), "rank": rank} for c, rank in diagnoses]}
    if billing:
        r["extension"] = [{"url": "http://example.org/StructureDefinition/billing-provider",
                           "valueReference": ref("Practitioner", billing)}]
    return r


def coverage(id_, patient, payer, start=None, end=None, status="active"):
    return {"resourceType": "Coverage", "id": id_, "status": status, "beneficiary": ref("Patient", patient),
            "payor": [ref("Organization", payer)], "period": {k: v for k, v in (("start", start), ("end", end)) if v}}


def test_bulk_data_file_names():
    assert resource_of("Encounter.ndjson") == "Encounter"
    assert resource_of("Encounter_1.ndjson") == "Encounter"
    assert resource_of("encounter-002.NDJSON") == "Encounter"
    assert resource_of("3.EpisodeOfCare.ndjson") == "EpisodeOfCare"
    assert resource_of("Coverage.ndjson") == "Coverage"
    assert resource_of("MedicationRequest.ndjson") is None
    assert resource_of("Encounter.json") is None


def test_encounters_with_cpt_codes(tmp_path):
    performer = {"type": [{"coding": [{"code": "PPRF"}]}], "individual": ref("Practitioner", "BP1")}
    other = {"type": [{"coding": [{"code": "ADM"}]}], "individual": ref("Practitioner", "RN9")}
    path = ndjson(tmp_path / "Encounter_1.ndjson", [
        encounter("V1", "P1", "2026-05-04T09:00:00-04:00", "99213", participants=[other, performer]),
        encounter("V2", "P1", "2026-05-05", None),  # no CPT/HCPCS: not a billed visit, ignored
        encounter("V3", "P2", "2026-05-06T10:00:00Z", "G0438",
                  system="urn:oid:2.16.840.1.113883.6.285", participants=[other]),
        encounter("V4", "P2", "2026-05-07", "99214", status="entered-in-error"),
        encounter("V5", "https://fhir.example.org/Patient/P3/_history/2", "2026-5-8", "90834"),
        {"resourceType": "Patient", "id": "P9"},  # another resource type in the file: ignored
    ], blank_line_after=2)
    (part,) = read_parts(path, "encounters")
    assert part.label == "Encounter_1.ndjson"
    assert part.data.rows() == [
        ("V1", "P1", "2026-05-04", "BP1", "99213", 1),
        ("V3", "P2", "2026-05-06", "RN9", "G0438", 3),
        ("V5", "P3", "2026-5-8", None, "90834", 5),  # not a full date: passed on for the quarantine
    ]


def test_phq9_and_gad7_observations_other_loinc_ignored(tmp_path):
    path = ndjson(tmp_path / "Observation.ndjson", [
        observation("O1", "P1", "44261-6", "2026-05-04T10:00:00-04:00", valueQuantity={"value": 14}),
        observation("O2", "P1", "70274-6", None, effectivePeriod={"start": "2026-05-05"}, valueInteger=9),
        observation("O3", "P1", "8867-4", "2026-05-04", valueQuantity={"value": 72}),  # heart rate
        observation("O4", "P2", "44261-6", "2026-05-06", valueQuantity={"value": 7.5}),
        observation("O5", "P2", "44261-6", "2026-05-07", status="entered-in-error", valueInteger=3),
    ])
    (part,) = read_parts(path, "assessments")
    assert part.data.rows() == [
        ("P1", "2026-05-04", "phq9", "14", 1),
        ("P1", "2026-05-05", "gad7", "9", 2),
        ("P2", "2026-05-06", "phq9", "7.5", 4),
    ]
    # the LOINC -> instrument map is data: another map gives other instruments
    (part,) = read_parts(path, "assessments", instruments={"8867-4": "pulse"})
    assert part.data["instrument"].to_list() == ["pulse"]


def test_episode_of_care_payer_consent_and_diagnosis(tmp_path):
    path = ndjson(tmp_path / "EpisodeOfCare.ndjson", [
        episode("EP1", "P1", "2026-03-01", billing="BP1", diagnoses=[("C2", 2), ("C1", 1)]),
        episode("EP2", "P2", "2026-03-01", "2026-06-30", program="bhi"),
        episode("EP3", "P3", "2026-03-01"),
    ])
    ndjson(tmp_path / "Coverage.ndjson", [
        coverage("A", "P1", "acme_commercial", "2025-01-01", "2026-02-28"),  # ended before the episode
        coverage("B", "P1", "medicare", "2026-01-01"),  # in force on 2026-03-01
        coverage("C", "P1", "nc_medicaid", "2025-06-01", status="cancelled"),
        coverage("D", "P2", "nc_medicaid", "2026-04-01", "2026-12-31"),  # starts during the episode
    ])
    ndjson(tmp_path / "Consent.ndjson", [
        {"resourceType": "Consent", "id": "K1", "status": "active", "patient": ref("Patient", "P1"),
         "dateTime": "2026-02-20T10:00:00-05:00"},
        {"resourceType": "Consent", "id": "K2", "status": "active", "patient": ref("Patient", "P1"),
         "dateTime": "2026-01-10"},
        {"resourceType": "Consent", "id": "K3", "status": "active", "patient": ref("Patient", "P2"),
         "dateTime": "2026-03-15"},
        {"resourceType": "Consent", "id": "K4", "status": "rejected", "patient": ref("Patient", "P3"),
         "dateTime": "2026-03-01"},
    ])
    ndjson(tmp_path / "Condition.ndjson", [
        {"resourceType": "Condition", "id": "C1", "code": {"coding": [
            {"system": "http://snomed.info/sct", "code": "35489007"},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]}},
        {"resourceType": "Condition", "id": "C2", "code": {"coding": [
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F41.1"}]}},
    ])
    (part,) = read_parts(path, "enrollments")
    assert part.data.to_dicts() == [
        {"patient_id": "P1", "program": "cocm", "payer_id": "medicare", "facility_id": "F1",
         "billing_provider_id": "BP1", "enrolled_on": "2026-03-01", "consent_on": "2026-02-20",
         "discharged_on": None, "diagnosis_code": "F32.1", "source_row": 1},
        {"patient_id": "P2", "program": "bhi", "payer_id": "nc_medicaid", "facility_id": "F1",
         "billing_provider_id": "CM1", "enrolled_on": "2026-03-01", "consent_on": "2026-03-15",
         "discharged_on": "2026-06-30", "diagnosis_code": None, "source_row": 2},
        {"patient_id": "P3", "program": "cocm", "payer_id": None, "facility_id": "F1",
         "billing_provider_id": "CM1", "enrolled_on": "2026-03-01", "consent_on": None,
         "discharged_on": None, "diagnosis_code": None, "source_row": 3},
    ]


def test_malformed_ndjson_names_the_file(tmp_path):
    path = tmp_path / "Encounter.ndjson"
    path.write_text('{"resourceType": "Encounter", "id": "V1"}\n{"resourceType": "Encounter", "id": \n')
    with pytest.raises(ExtractError, match=r"Encounter.ndjson: cannot read file as FHIR NDJSON"):
        read_parts(path, "encounters")


def _fhir_drop(folder: Path) -> Path:
    folder.mkdir()
    ndjson(folder / "Patient.ndjson", [{"resourceType": "Patient", "id": "P1"}])
    ndjson(folder / "Encounter_1.ndjson", [encounter("V1", "P1", "2026-01-01", "99213",
                                                     participants=[{"individual": ref("Practitioner", "BP1")}])])
    ndjson(folder / "Encounter_2.ndjson", [encounter("V2", "P1", "2026-01-20", "90834",
                                                     participants=[{"individual": ref("Practitioner", "TH1")}])])
    ndjson(folder / "Observation.ndjson", [
        observation("O1", "P1", "44261-6", "2026-01-05", valueInteger=15),
        observation("O2", "P1", "2093-3", "2026-01-05", valueQuantity={"value": 180}),  # cholesterol
    ])
    ndjson(folder / "EpisodeOfCare.ndjson", [episode("EP1", "P1", "2026-01-01", billing="BP1"),
                                             episode("EP2", "P2", "2026-01-01", billing="BP1")])
    ndjson(folder / "Coverage.ndjson", [coverage("K", "P1", "org-mcr", "2025-01-01"),
                                        coverage("L", "P2", "org-unknown", "2025-01-01")])
    ndjson(folder / "Consent.ndjson", [{"resourceType": "Consent", "id": "C", "status": "active",
                                        "patient": ref("Patient", "P1"), "dateTime": "2026-01-01"}])
    # FHIR has no time-entry, roster or psychiatric-review resource: they come as CSV beside the NDJSON
    write_csv(folder / "time_entries.csv", [{"entry_id": "E1", "patient_id": "P1", "staff_id": "CM1",
                                             "service_date": "2026-01-05", "minutes": "40", "activity": "follow_up"}])
    write_csv(folder / "staff.csv", [{"staff_id": "CM1", "role": "care_manager", "facility_id": "F1"}])
    write_csv(folder / "psych_reviews.csv", [{"review_id": "R1", "patient_id": "P1", "review_date": "2026-01-15",
                                              "consultant_id": "PC1"}])
    return folder


def test_fhir_drop_loads_through_the_ingest_with_a_profile_value_map(tmp_path):
    folder = _fhir_drop(tmp_path / "drop")
    found = discover(folder)
    assert [p.name for p in found["encounters"]] == ["Encounter_1.ndjson", "Encounter_2.ndjson"]
    assert [p.name for p in found["enrollments"]] == ["EpisodeOfCare.ndjson"]
    # payer organisations mapped to payer ids by the drop's profile; applies to FHIR-derived tables too
    (folder / "bhi-profile.yaml").write_text("tables:\n  enrollments:\n    values:\n      payer_id: {org-mcr: medicare}\n")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    result = load_drop(conn, folder)
    assert result.file_errors == []
    assert conn.sql("select encounter_id, cpt_code, provider_id, source_file from raw_encounters order by 1").fetchall() == [
        ("V1", "99213", "BP1", "Encounter_1.ndjson"), ("V2", "90834", "TH1", "Encounter_2.ndjson")
    ]
    assert conn.sql("select patient_id, instrument, score from raw_assessments").fetchall() == [("P1", "phq9", 15.0)]
    assert conn.sql("select patient_id, payer_id, consent_on::varchar from raw_enrollments").fetchall() == [
        ("P1", "medicare", "2026-01-01")
    ]
    assert conn.sql("select source_file, source_row, reason from quarantine").fetchall() == [
        ("EpisodeOfCare.ndjson", 2, "payer_id: unknown payer (not in reference or payers extract)")
    ]


def test_observations_use_the_seeded_instrument_reference(tmp_path):
    folder = _fhir_drop(tmp_path / "drop")
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    for src in (REPO_ROOT / "data" / "reference").glob("*.csv"):
        (ref_dir / src.name).write_text(src.read_text())
    # a site that maps the cholesterol LOINC to a (made-up) instrument: ref_instruments decides
    with (ref_dir / "instruments.csv").open("a") as fh:
        fh.write("chol,2093-3,Total cholesterol (test only),false,\n")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn, ref_dir)
    load_drop(conn, folder)
    assert conn.sql("select instrument from raw_assessments order by 1").fetchall() == [("chol",), ("phq9",)]


def test_fhir_example_drop(tmp_path):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    result = load_drop(conn, REPO_ROOT / "data" / "examples" / "fhir_bulk")
    assert result.file_errors == [] and sum(result.rows_quarantined.values()) == 0
    # 7 billed visits (the telephone call has no CPT code), 18 scores (the heart rate is not one)
    assert (result.rows_loaded["encounters"], result.rows_loaded["assessments"]) == (7, 18)
    assert conn.sql(
        "select patient_id, program, payer_id, billing_provider_id, consent_on::varchar, diagnosis_code"
        " from raw_enrollments where patient_id in ('P003', 'P006') order by 1"
    ).fetchall() == [("P003", "cocm", "nc_medicaid", "S03", "2026-05-04", "F32.1"),
                     ("P006", "bhi", "nc_medicaid", "S03", None, "F32.1")]
