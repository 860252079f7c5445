"""Write the example drops of data/examples/ (synthetic, no real patients), one per source profile:

  ehr_reporting/  an EHR reporting-tool export: UPPER-CASE columns, Windows-1252, CRLF, US dates,
                  12-hour times, code values (profiles/ehr_reporting.yaml)
  registry/       a care-management registry export: tab-delimited .txt, UTF-8 with BOM, start/end
                  timestamps and a billable-minutes column (profiles/registry.yaml)
  tracker_xlsx/   a spreadsheet tracker: one sheet per month, durations as H:MM:SS, the team and
                  caseload on named sheets (profiles/tracker_xlsx.yaml)
  fhir_bulk/      a FHIR R4 Bulk Data export (NDJSON) plus the CSV files FHIR has no resource for
                  (no profile: FHIR files are recognised by name)

All four hold the same care: six patients, May and June 2026; run them with --as-of 2026-07-10.
Run `python data/examples/generate.py` from the repository root to rewrite them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent

# (patient, program, payer, facility, enrolled_on, consent_on)
PATIENTS = [
    ("P001", "cocm", "medicare", "F1", "2026-04-20", "2026-04-20"),
    ("P002", "cocm", "medicare", "F1", "2026-04-27", "2026-04-28"),
    ("P003", "cocm", "nc_medicaid", "F1", "2026-05-04", "2026-05-04"),
    ("P004", "bhi", "medicare", "F2", "2026-04-15", "2026-04-15"),
    ("P005", "cocm", "acme_commercial", "F2", "2026-05-11", "2026-05-11"),
    ("P006", "bhi", "nc_medicaid", "F2", "2026-05-18", ""),  # no consent on file: nothing counts
]
# (staff, role, facility, name, annual cost, fte)
STAFF = [
    ("S01", "care_manager", "F1", "Ren\u00e9e Dubois", "72000", "1.0"),
    ("S02", "care_manager", "F2", "Jos\u00e9 Pe\u00f1a", "70000", "0.8"),
    ("S03", "billing_practitioner", "F1", "Dr. Ana Lee", "220000", "1.0"),
    ("S04", "psychiatric_consultant", "F1", "Dr. Sam Ortiz", "280000", "0.1"),
    ("S05", "clinical_staff", "F2", "Kim Nguyen", "52000", "1.0"),
]
CARE_MANAGER = {"F1": "S01", "F2": "S02"}
BHI_STAFF = "S05"
ACTIVITIES = ["assessment", "follow_up", "care_coordination", "follow_up", "brief_intervention", "clerical"]


def entries() -> list[dict]:
    """Time entries: 3-5 per patient per month, 08:00 onwards, one clerical entry per patient-month."""
    out, n = [], 0
    for month in (5, 6):
        for i, (patient, program, _, facility, enrolled, _) in enumerate(PATIENTS):
            staff = BHI_STAFF if program == "bhi" else CARE_MANAGER[facility]
            first = max(dt.date(2026, month, 1), dt.date.fromisoformat(enrolled))
            for k in range(3 + (i + month) % 3):
                n += 1
                day = first + dt.timedelta(days=3 * k + i % 3)
                if day.month != month:
                    day = dt.date(2026, month, 28)
                start = dt.datetime.combine(day, dt.time(8 + k, 5 * (i + k) % 60))
                minutes = 9 + (7 * n + 3 * i) % 17
                activity = ACTIVITIES[(n + i) % len(ACTIVITIES)] if k else "assessment"
                out.append({
                    "entry_id": f"E{n:04d}", "patient_id": patient, "staff_id": staff, "program": program,
                    "start": start, "end": start + dt.timedelta(minutes=minutes), "minutes": minutes,
                    "activity": activity,
                })
    return out


def reviews() -> list[dict]:
    out = []
    for month in (5, 6):
        for patient, program, *_ in PATIENTS:
            if program == "cocm":
                out.append({"review_id": f"R{len(out) + 1:03d}", "patient_id": patient,
                            "review_date": dt.date(2026, month, 20), "consultant_id": "S04"})
    return out


def encounters() -> list[dict]:
    """An initiating E/M visit by the billing practitioner on each enrollment day, plus one
    psychotherapy visit by the consultant."""
    out = [{"encounter_id": f"V{i + 1:03d}", "patient_id": p[0], "encounter_date": dt.date.fromisoformat(p[4]),
            "provider_id": "S03", "cpt_code": "99213" if i % 2 else "99214"} for i, p in enumerate(PATIENTS)]
    out.append({"encounter_id": "V100", "patient_id": "P002", "encounter_date": dt.date(2026, 6, 9),
                "provider_id": "S04", "cpt_code": "90834"})
    return out


def assessments() -> list[dict]:
    out = []
    for i, (patient, *_rest) in enumerate(PATIENTS):
        for month in (5, 6):
            out.append({"patient_id": patient, "assessment_date": dt.date(2026, month, 12),
                        "instrument": "phq9", "score": 18 - 3 * (month - 5) - i})
            if i % 2:
                out.append({"patient_id": patient, "assessment_date": dt.date(2026, month, 12),
                            "instrument": "gad7", "score": 12 - (month - 5) - i})
    return out


def _csv(path: Path, header: list[str], rows: list[list], *, encoding="utf-8", delimiter=",", newline="\n") -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


# ---------------------------------------------------------------------------------------------------


def ehr_reporting(folder: Path) -> None:
    """UPPER-CASE headers, cp1252 with CRLF, MM/DD/YYYY dates, 12-hour times, code values."""
    us = "%m/%d/%Y"
    activity = {"assessment": "ASMT", "follow_up": "FU", "care_coordination": "COORD",
                "brief_intervention": "BI", "clerical": "CLER"}
    role = {"care_manager": "BHCM", "billing_practitioner": "PCP", "psychiatric_consultant": "PSYCH",
            "clinical_staff": "MA"}
    payer = {"medicare": "MCR", "nc_medicaid": "MCD-NC", "acme_commercial": "ACME"}
    kw = {"encoding": "cp1252", "newline": "\r\n"}
    for month in (5, 6):
        rows = [[e["entry_id"].replace("E", "TL"), e["patient_id"].replace("P", "MRN"), e["staff_id"],
                 f"{e['start']:{us}}", e["minutes"], activity[e["activity"]], e["program"].upper(),
                 e["start"].strftime("%I:%M %p"), e["end"].strftime("%I:%M %p")]
                for e in entries() if e["start"].month == month]
        _csv(folder / f"BH_TIME_LOG_2026{month:02d}.csv",
             ["LOG_ID", "PAT_MRN", "PROV_ID", "CONTACT_DATE", "MINUTES", "ACTIVITY_CODE", "PROGRAM",
              "START_TIME", "END_TIME"], rows, **kw)
    _csv(folder / "PROVIDER_ROSTER.csv", ["PROV_ID", "PROV_NAME", "PROV_TYPE", "DEPT_ID", "ANNUAL_COST", "FTE"],
         [[s[0], s[3], role[s[1]], s[2], s[4], s[5]] for s in STAFF], **kw)
    _csv(folder / "BH_ENROLLMENT.csv",
         ["PAT_MRN", "PROGRAM", "PAYOR_CODE", "DEPT_ID", "PCP_PROV_ID", "ENROLL_DATE", "CONSENT_DATE",
          "DISCHARGE_DATE", "DX_CODE"],
         [[p[0].replace("P", "MRN"), p[1].upper(), payer[p[2]], p[3], "S03",
           f"{dt.date.fromisoformat(p[4]):{us}}", f"{dt.date.fromisoformat(p[5]):{us}}" if p[5] else "", "",
           "F32.1"] for p in PATIENTS], **kw)
    _csv(folder / "PSYCH_CONSULTS.csv", ["CONSULT_ID", "PAT_MRN", "CONSULT_DATE", "CONSULTANT_PROV_ID"],
         [[r["review_id"], r["patient_id"].replace("P", "MRN"), f"{r['review_date']:{us}}", r["consultant_id"]]
          for r in reviews()], **kw)
    _csv(folder / "VISITS.csv", ["PAT_ENC_CSN_ID", "PAT_MRN", "CONTACT_DATE", "VISIT_PROV_ID", "CPT_CODE"],
         [[v["encounter_id"], v["patient_id"].replace("P", "MRN"), f"{v['encounter_date']:{us}}",
           v["provider_id"], v["cpt_code"]] for v in encounters()], **kw)
    _csv(folder / "FLOWSHEET_SCORES.csv", ["PAT_MRN", "RECORDED_DATE", "FLO_MEAS_NAME", "MEAS_VALUE"],
         [[a["patient_id"].replace("P", "MRN"), f"{a['assessment_date']:{us}}",
           {"phq9": "PHQ-9 TOTAL SCORE", "gad7": "GAD-7 TOTAL SCORE"}[a["instrument"]], a["score"]]
          for a in assessments()], **kw)


def registry(folder: Path) -> None:
    """Tab-delimited .txt, UTF-8 with BOM; start/end timestamps; billable minutes sometimes empty."""
    kw = {"encoding": "utf-8-sig", "delimiter": "\t"}
    ts = "%m/%d/%Y %H:%M"
    activity = {"assessment": "Initial assessment", "follow_up": "Follow-up contact",
                "care_coordination": "Care coordination", "brief_intervention": "Brief intervention",
                "clerical": "Scheduling / clerical"}
    rows = []
    for i, e in enumerate(entries()):
        billable = "" if i % 3 == 0 else e["minutes"]  # empty: derived from start and end
        rows.append([e["entry_id"], e["patient_id"], e["staff_id"], activity[e["activity"]],
                     e["program"].upper(), e["start"].strftime(ts), e["end"].strftime(ts), billable])
    header = ["Entry Id", "Patient Id", "Clinician Id", "Activity", "Program", "Start", "End", "Billable Minutes"]
    _csv(folder / "TimeEntries_2026-05.txt", header, [r for r in rows if r[5].startswith("05/")], **kw)
    _csv(folder / "TimeEntries_2026-06.txt", header, [r for r in rows if r[5].startswith("06/")], **kw)
    role = {"care_manager": "Care Manager", "billing_practitioner": "Primary Care Provider",
            "psychiatric_consultant": "Psychiatric Consultant", "clinical_staff": "Medical Assistant"}
    _csv(folder / "Clinicians.txt", ["Clinician Id", "Name", "Role", "Clinic"],
         [[s[0], s[3], role[s[1]], s[2]] for s in STAFF], **kw)
    _csv(folder / "Caseload.txt",
         ["Patient Id", "Program", "Insurance", "Clinic", "PCP Id", "Enrolled", "Consent Signed", "Discharged",
          "Primary Dx"],
         [[p[0], p[1].upper(), {"medicare": "Medicare", "nc_medicaid": "NC Medicaid",
                                "acme_commercial": "Acme Health Plan"}[p[2]], p[3], "S03", p[4], p[5], "", "F41.1"]
          for p in PATIENTS], **kw)
    _csv(folder / "CaseReviews.txt", ["Review Id", "Patient Id", "Reviewed On", "Psychiatrist Id"],
         [[r["review_id"], r["patient_id"], r["review_date"], r["consultant_id"]] for r in reviews()], **kw)
    _csv(folder / "Visits.txt", ["Visit Id", "Patient Id", "Visit Date", "Provider Id", "CPT"],
         [[v["encounter_id"], v["patient_id"], v["encounter_date"], v["provider_id"], v["cpt_code"]]
          for v in encounters()], **kw)
    _csv(folder / "Measures.txt", ["Patient Id", "Measured On", "Measure", "Score"],
         [[a["patient_id"], a["assessment_date"], a["instrument"].upper(), a["score"]] for a in assessments()], **kw)


def tracker_xlsx(folder: Path) -> None:
    """Workbooks: the time log with one sheet per month (durations as Excel time cells in May and as
    H:MM:SS text in June) and an instructions sheet; the team (beside a vacancies sheet), caseload,
    reviews and visits each in a workbook, on a named sheet."""
    activity = {"assessment": "Assessment", "follow_up": "Follow up", "care_coordination": "Coordination",
                "brief_intervention": "Brief intervention", "clerical": "Admin"}
    wb = xlsxwriter.Workbook(folder / "Caseload tracker 2026.xlsx")
    date_fmt = wb.add_format({"num_format": "mm/dd/yyyy"})
    dur_fmt = wb.add_format({"num_format": "[h]:mm:ss"})
    notes = wb.add_worksheet("Read me")
    notes.write(0, 0, "One tab per month. Time spent as h:mm:ss.")
    for month, name in ((5, "2026-05"), (6, "2026-06")):
        ws = wb.add_worksheet(name)
        ws.write_row(0, 0, ["Entry #", "Date", "Patient", "Staff", "Program", "Activity", "Time spent"])
        for r, e in enumerate((e for e in entries() if e["start"].month == month), start=1):
            ws.write(r, 0, e["entry_id"])
            ws.write_datetime(r, 1, e["start"].replace(hour=0, minute=0), date_fmt)
            ws.write_row(r, 2, [e["patient_id"], e["staff_id"], e["program"], activity[e["activity"]]])
            if month == 5:
                ws.write_datetime(r, 6, dt.timedelta(minutes=e["minutes"]), dur_fmt)
            else:
                ws.write_string(r, 6, f"0:{e['minutes']:02d}:00")
    wb.close()

    wb = xlsxwriter.Workbook(folder / "Team.xlsx")
    team = wb.add_worksheet("Team")
    team.write_row(0, 0, ["Staff", "Name", "Role", "Clinic", "Salary", "FTE"])
    role = {"care_manager": "BH care manager", "billing_practitioner": "PCP",
            "psychiatric_consultant": "Consulting psychiatrist", "clinical_staff": "Nurse"}
    for r, s in enumerate(STAFF, start=1):
        team.write_row(r, 0, [s[0], s[3], role[s[1]], s[2], float(s[4]), float(s[5])])
    wb.add_worksheet("Vacancies").write_row(0, 0, ["Role", "Clinic", "Since"])
    wb.close()

    def book(name: str):
        wb = xlsxwriter.Workbook(folder / name)
        return wb, wb.add_format({"num_format": "yyyy-mm-dd"})

    wb, date_fmt = book("Caseload.xlsx")
    caseload = wb.add_worksheet("Caseload")
    caseload.write_row(0, 0, ["Patient", "Program", "Payer", "Clinic", "PCP", "Enrolled", "Consent", "Discharged",
                              "Dx"])
    for r, p in enumerate(PATIENTS, start=1):
        caseload.write_row(r, 0, [p[0], p[1], p[2], p[3], "S03"])
        caseload.write_datetime(r, 5, dt.datetime.fromisoformat(p[4]), date_fmt)
        if p[5]:
            caseload.write_datetime(r, 6, dt.datetime.fromisoformat(p[5]), date_fmt)
        caseload.write(r, 8, "F33.1")
    wb.close()
    wb, date_fmt = book("Psych reviews.xlsx")
    rev = wb.add_worksheet("Psych reviews")
    rev.write_row(0, 0, ["Review", "Patient", "Date", "Psychiatrist"])
    for r, x in enumerate(reviews(), start=1):
        rev.write_row(r, 0, [x["review_id"], x["patient_id"]])
        rev.write_datetime(r, 2, dt.datetime.combine(x["review_date"], dt.time()), date_fmt)
        rev.write(r, 3, x["consultant_id"])
    wb.close()
    wb, date_fmt = book("Visits.xlsx")
    visits = wb.add_worksheet("Visits")
    visits.write_row(0, 0, ["Visit", "Patient", "Date", "Provider", "CPT"])
    for r, v in enumerate(encounters(), start=1):
        visits.write_row(r, 0, [v["encounter_id"], v["patient_id"]])
        visits.write_datetime(r, 2, dt.datetime.combine(v["encounter_date"], dt.time()), date_fmt)
        visits.write_row(r, 3, [v["provider_id"], v["cpt_code"]])
    wb.close()


def fhir_bulk(folder: Path) -> None:
    """NDJSON resources as a Bulk Data $export writes them, plus time entries, staff and psychiatric
    reviews as canonical CSV (FHIR has no resource for them)."""

    def ndjson(name: str, resources: list[dict]) -> None:
        (folder / name).write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in resources))

    ref = lambda kind, i: {"reference": f"{kind}/{i}"}  # noqa: E731
    ndjson("Patient.ndjson", [{"resourceType": "Patient", "id": p[0], "gender": "unknown"} for p in PATIENTS])
    encs = [{"resourceType": "Encounter", "id": v["encounter_id"], "status": "finished", "subject": ref("Patient", v["patient_id"]),
             "period": {"start": f"{v['encounter_date']}T09:00:00-04:00", "end": f"{v['encounter_date']}T09:30:00-04:00"},
             "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": v["cpt_code"]}]}],
             "participant": [{"type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF"}]}],
                              "individual": ref("Practitioner", v["provider_id"])}]}
            for v in encounters()]
    encs.append({"resourceType": "Encounter", "id": "V900", "status": "finished", "subject": ref("Patient", "P001"),
                 "period": {"start": "2026-05-02"}, "type": [{"text": "Telephone call"}]})  # no CPT: not a billed visit
    ndjson("Encounter_1.ndjson", encs[:4])
    ndjson("Encounter_2.ndjson", encs[4:])
    loinc = {"phq9": "44261-6", "gad7": "70274-6"}
    obs = [{"resourceType": "Observation", "id": f"O{i + 1:03d}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc[a["instrument"]]}]},
            "subject": ref("Patient", a["patient_id"]), "effectiveDateTime": f"{a['assessment_date']}T10:15:00-04:00",
            "valueQuantity": {"value": a["score"], "unit": "{score}"}} for i, a in enumerate(assessments())]
    obs.append({"resourceType": "Observation", "id": "O900", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                "subject": ref("Patient", "P001"), "effectiveDateTime": "2026-05-12", "valueQuantity": {"value": 72}})
    ndjson("Observation.ndjson", obs)
    ndjson("Condition.ndjson", [{"resourceType": "Condition", "id": f"C{p[0]}", "subject": ref("Patient", p[0]),
                                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F32.1"}]}}
                                for p in PATIENTS])
    ndjson("EpisodeOfCare.ndjson", [
        {"resourceType": "EpisodeOfCare", "id": f"EOC{p[0]}", "status": "active",
         "type": [{"coding": [{"system": "http://example.org/bhi-program", "code": p[1]}]}],
         "patient": ref("Patient", p[0]), "managingOrganization": ref("Organization", p[3]),
         "period": {"start": p[4]}, "careManager": ref("Practitioner", CARE_MANAGER[p[3]]),
         "diagnosis": [{"condition": ref("Condition", f"C{p[0]}"), "rank": 1}],
         "extension": [{"url": "http://bhi-revenue.example/fhir/StructureDefinition/billing-provider",
                        "valueReference": ref("Practitioner", "S03")}]}
        for p in PATIENTS])
    ndjson("Coverage.ndjson", [
        {"resourceType": "Coverage", "id": f"COV{p[0]}", "status": "active", "beneficiary": ref("Patient", p[0]),
         "payor": [ref("Organization", p[2])], "period": {"start": "2026-01-01"}} for p in PATIENTS])
    ndjson("Consent.ndjson", [
        {"resourceType": "Consent", "id": f"CONS{p[0]}", "status": "active", "patient": ref("Patient", p[0]),
         "dateTime": f"{p[5]}T08:00:00-04:00"} for p in PATIENTS if p[5]])
    _csv(folder / "time_entries.csv", ["entry_id", "patient_id", "staff_id", "service_date", "minutes", "activity",
                                       "program", "start_time", "end_time"],
         [[e["entry_id"], e["patient_id"], e["staff_id"], e["start"].date(), e["minutes"], e["activity"],
           e["program"], f"{e['start']:%H:%M}", f"{e['end']:%H:%M}"] for e in entries()])
    _csv(folder / "staff.csv", ["staff_id", "role", "facility_id", "name", "annual_cost", "fte"], [list(s[:3]) + [s[3], s[4], s[5]] for s in STAFF])
    _csv(folder / "psych_reviews.csv", ["review_id", "patient_id", "review_date", "consultant_id"],
         [[r["review_id"], r["patient_id"], r["review_date"], r["consultant_id"]] for r in reviews()])


def main() -> None:
    for name, write in (("ehr_reporting", ehr_reporting), ("registry", registry), ("tracker_xlsx", tracker_xlsx),
                        ("fhir_bulk", fhir_bulk)):
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        write(folder)


if __name__ == "__main__":
    main()
