"""FHIR R4 Bulk Data ($export) NDJSON -> canonical extract tables, as text.

| Resource (file)               | Table        | How                                                      |
|-------------------------------|--------------|----------------------------------------------------------|
| Encounter[_N].ndjson          | encounters   | one row per Encounter that has a CPT/HCPCS code in `type` |
| Observation[_N].ndjson        | assessments  | Observations whose LOINC code is an instrument of          |
|                               |              | data/reference/instruments.csv (PHQ-9 44261-6, GAD-7 70274-6) |
| EpisodeOfCare[_N].ndjson      | enrollments  | one row per episode; payer from Coverage, consent date    |
|                               |              | from Consent, diagnosis from Condition (same folder)      |
| Coverage, Consent, Condition  | (context)    | read with EpisodeOfCare                                   |
| Patient and anything else     | (ignored)    | ids come from the references (`Patient/123` -> `123`)     |

Files are read with polars' NDJSON reader against an explicit schema of the fields used (fields
missing from a resource are null; other fields are ignored). Every value is returned as text; dates
are the first ten characters of a FHIR date/dateTime (`2026-05-04T10:00:00-04:00` -> `2026-05-04`,
the local date as written); a value that is not a full date is passed on as written so the ingest
quarantines the row. The row number of a record is its position among the non-blank lines.
Documented in docs/source-profiles.md#fhir.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from pipelines.ingest.errors import ExtractError

TABLE_OF_RESOURCE = {"Encounter": "encounters", "Observation": "assessments", "EpisodeOfCare": "enrollments"}
CONTEXT_RESOURCES = ("Coverage", "Consent", "Condition", "Patient")
RESOURCES = (*TABLE_OF_RESOURCE, *CONTEXT_RESOURCES)

# `Encounter.ndjson`, `Encounter_1.ndjson`, `Encounter-2.ndjson`, `Encounter.003.ndjson`, `1.Encounter.ndjson`
_FILE = re.compile(r"^(?:\d+[._-])?([A-Za-z]+)(?:[._-]?\d+)?\.ndjson$", re.IGNORECASE)

CPT_SYSTEMS = ["http://www.ama-assn.org/go/cpt", "urn:oid:2.16.840.1.113883.6.12"]
HCPCS_SYSTEMS = ["https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "urn:oid:2.16.840.1.113883.6.285"]
LOINC_SYSTEMS = ["http://loinc.org", "urn:oid:2.16.840.1.113883.6.1"]
ICD10_SYSTEMS = ["http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.840.1.113883.6.90"]
# performer participant types (v3 ParticipationType), preferred over other participants
PERFORMER_TYPES = ["PPRF", "SPRF", "ATND", "PART"]
BILLING_PROVIDER_EXTENSION = "billing-provider"  # an extension whose url ends with this

SKIP_STATUS = {
    "Encounter": ["entered-in-error", "cancelled"],
    "Observation": ["entered-in-error", "cancelled"],
    "EpisodeOfCare": ["entered-in-error", "cancelled", "planned", "waitlist"],
    "Coverage": ["entered-in-error", "cancelled"],
    "Consent": ["entered-in-error", "inactive", "rejected", "draft", "proposed"],
}

_S = pl.String
Coding = pl.Struct({"system": _S, "code": _S, "display": _S})
Concept = pl.Struct({"coding": pl.List(Coding), "text": _S})
Reference = pl.Struct({"reference": _S, "display": _S, "identifier": pl.Struct({"system": _S, "value": _S})})
Period = pl.Struct({"start": _S, "end": _S})

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "Encounter": {
        "resourceType": _S, "id": _S, "status": _S, "subject": Reference, "period": Period,
        "type": pl.List(Concept),
        "participant": pl.List(pl.Struct({"type": pl.List(Concept), "individual": Reference})),
    },
    "Observation": {
        "resourceType": _S, "id": _S, "status": _S, "code": Concept, "subject": Reference,
        "effectiveDateTime": _S, "effectivePeriod": Period, "issued": _S,
        "valueQuantity": pl.Struct({"value": pl.Float64}), "valueInteger": pl.Int64,
    },
    "EpisodeOfCare": {
        "resourceType": _S, "id": _S, "status": _S, "type": pl.List(Concept), "patient": Reference,
        "managingOrganization": Reference, "period": Period, "careManager": Reference,
        "diagnosis": pl.List(pl.Struct({"condition": Reference, "rank": pl.Int64})),
        "extension": pl.List(pl.Struct({"url": _S, "valueReference": Reference})),
    },
    "Coverage": {
        "resourceType": _S, "id": _S, "status": _S, "beneficiary": Reference, "payor": pl.List(Reference),
        "period": Period,
    },
    "Consent": {"resourceType": _S, "id": _S, "status": _S, "patient": Reference, "dateTime": _S},
    "Condition": {"resourceType": _S, "id": _S, "code": Concept},
}


def resource_of(file_name: str) -> str | None:
    """The FHIR resource type a Bulk Data file name stands for (None: not a FHIR file we know)."""
    m = _FILE.match(file_name)
    if not m:
        return None
    return next((r for r in RESOURCES if r.lower() == m.group(1).lower()), None)


def misnamed_table(file_name: str) -> str | None:
    """The table of an `.ndjson` file whose name is not a Bulk Data name (`<Resource>[_N].ndjson`)
    but starts with a resource this ingest reads (`Encounter_zz.ndjson`, `Coverage final.ndjson`):
    such a file is rejected naming it (read_resource_file), never ignored without a word. A context
    resource (Coverage, Consent, Condition) belongs to enrollments. None for any other file."""
    if not file_name.lower().endswith(".ndjson") or _FILE.match(file_name):
        return None  # a Bulk Data name: a resource read, or another resource (ObservationDefinition) ignored
    stem = re.sub(r"^\d+[._-]", "", file_name).lower()
    for resource in sorted(RESOURCES, key=len, reverse=True):
        if stem.startswith(resource.lower()) and resource != "Patient":
            return TABLE_OF_RESOURCE.get(resource, "enrollments")
    return None


def read_ndjson(path: Path, resource: str) -> pl.DataFrame:
    """The resources of one NDJSON file (fields of SCHEMAS[resource]) with `source_row` (1 = first
    record); records of another resourceType or a skipped status are left out."""
    try:
        df = pl.read_ndjson(path, schema=SCHEMAS[resource], row_index_name="source_row", row_index_offset=1)
    except Exception as exc:
        raise ExtractError(f"{path}: cannot read file as FHIR NDJSON ({type(exc).__name__})") from None
    keep = pl.col("resourceType") == resource
    if resource in SKIP_STATUS:
        keep &= ~pl.col("status").fill_null("").is_in(SKIP_STATUS[resource])
    return df.filter(keep).with_columns(pl.col("source_row").cast(pl.Int64))


def _context(folder: Path, resource: str) -> pl.DataFrame | None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and resource_of(p.name) == resource)
    if not files:
        return None
    return pl.concat([read_ndjson(p, resource) for p in files], how="vertical")


def ref_id(ref: pl.Expr) -> pl.Expr:
    """Reference -> id: `Patient/123` / `https://x/fhir/Patient/123/_history/2` -> `123`,
    `urn:uuid:abc` -> `abc`; without a reference, the identifier value."""
    text = (
        ref.struct.field("reference")
        .str.replace(r"/_history/[^/]*$", "")
        .str.replace(r"^.*/", "")
        .str.replace(r"^urn:(uuid|oid):", "")
    )
    return pl.coalesce(text, ref.struct.field("identifier").struct.field("value"))


def fhir_date(expr: pl.Expr) -> pl.Expr:
    """`2026-05-04T10:00:00Z` -> `2026-05-04`; anything that does not start with a full date as is."""
    return pl.coalesce(expr.str.extract(r"^(\d{4}-\d{2}-\d{2})", 1), expr)


def _first_code(df: pl.DataFrame, concepts: str, systems: list[str] | None, name: str) -> pl.DataFrame:
    """source_row -> the first coding code (of the given systems) in a List(CodeableConcept) column,
    or in a single CodeableConcept column."""
    col = df.select("source_row", pl.col(concepts).alias("_c"))
    if isinstance(df.schema[concepts], pl.List):
        col = col.explode("_c")
    col = col.select("source_row", pl.col("_c").struct.field("coding").alias("_coding")).explode("_coding")
    col = col.select("source_row", pl.col("_coding").struct.field("system").alias("_system"),
                     pl.col("_coding").struct.field("code").alias(name))
    if systems is not None:
        col = col.filter(pl.col("_system").is_in(systems))
    return col.filter(pl.col(name).is_not_null()).group_by("source_row", maintain_order=True).first().drop("_system")


def encounters(df: pl.DataFrame) -> pl.DataFrame:
    codes = _first_code(df, "type", CPT_SYSTEMS + HCPCS_SYSTEMS, "cpt_code")
    performer = pl.col("_p").struct.field("type").list.eval(
        pl.element().struct.field("coding").list.eval(pl.element().struct.field("code").is_in(PERFORMER_TYPES)).list.any()
    ).list.any().fill_null(False)
    people = (
        df.select("source_row", pl.col("participant").alias("_p"))
        .explode("_p")
        .with_columns(
            pl.int_range(pl.len()).over("source_row").alias("_pos"),
            ref_id(pl.col("_p").struct.field("individual")).alias("provider_id"),
            performer.alias("_perf"),
        )
        .filter(pl.col("provider_id").is_not_null())
        .sort(["source_row", "_perf", "_pos"], descending=[False, True, False])  # performers first
        .group_by("source_row", maintain_order=True)
        .first()
        .select("source_row", "provider_id")
    )
    return (
        df.join(codes, on="source_row", how="inner")  # encounters without a CPT/HCPCS code are not billed visits
        .join(people, on="source_row", how="left")
        .select(
            pl.col("id").alias("encounter_id"),
            ref_id(pl.col("subject")).alias("patient_id"),
            fhir_date(pl.col("period").struct.field("start")).alias("encounter_date"),
            "provider_id",
            "cpt_code",
            "source_row",
        )
        .sort("source_row")
    )


def default_instruments() -> dict[str, str]:
    from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

    ref = pl.read_csv(DEFAULT_REFERENCE_DIR / "instruments.csv", infer_schema=False)
    return instruments_from(ref)


def instruments_from(ref: pl.DataFrame) -> dict[str, str]:
    """{loinc: instrument} from a frame shaped like data/reference/instruments.csv."""
    ref = ref.filter(pl.col("loinc").is_not_null() & (pl.col("loinc").str.strip_chars() != ""))
    return dict(zip(ref["loinc"].str.strip_chars(), ref["instrument"].str.strip_chars()))


def assessments(df: pl.DataFrame, instruments: dict[str, str]) -> pl.DataFrame:
    ref = pl.DataFrame({"loinc": list(instruments), "instrument": list(instruments.values())},
                       schema={"loinc": pl.String, "instrument": pl.String})
    coded = (
        df.select("source_row", pl.col("code").struct.field("coding").alias("_coding"))
        .explode("_coding")
        .filter(pl.col("_coding").struct.field("system").is_in(LOINC_SYSTEMS))
        .select("source_row", pl.col("_coding").struct.field("code").alias("loinc"))
        .join(ref, on="loinc", how="inner")  # other LOINC codes (vitals, labs ...) are not assessments
        .group_by("source_row", maintain_order=True)
        .first()
    )
    value = pl.coalesce(pl.col("valueQuantity").struct.field("value"), pl.col("valueInteger").cast(pl.Float64))
    return (
        df.join(coded, on="source_row", how="inner")
        .select(
            ref_id(pl.col("subject")).alias("patient_id"),
            fhir_date(
                pl.coalesce(pl.col("effectiveDateTime"), pl.col("effectivePeriod").struct.field("start"), pl.col("issued"))
            ).alias("assessment_date"),
            "instrument",
            pl.when(value == value.round(0)).then(value.cast(pl.Int64).cast(pl.String))
            .otherwise(value.cast(pl.String)).alias("score"),
            "source_row",
        )
        .sort("source_row")
    )


def _pick_by_period(episodes: pl.DataFrame, other: pl.DataFrame, value: str) -> pl.DataFrame:
    """For each episode (source_row, patient_id, enrolled_on, discharged_on) the `value` of the
    patient's record (patient_id, start, end) in force on enrolled_on (latest start wins); else of the
    first record starting during the episode. Dates are compared as ISO text."""
    j = episodes.select("source_row", "patient_id", "enrolled_on", "discharged_on").join(
        other, on="patient_id", how="inner"
    )
    start, end = pl.col("start").fill_null(""), pl.col("end")
    on_start = (start <= pl.col("enrolled_on")) & (end.is_null() | (end >= pl.col("enrolled_on")))
    during = (start > pl.col("enrolled_on")) & (
        pl.col("discharged_on").is_null() | (start <= pl.col("discharged_on"))
    )
    at_start = j.filter(on_start).sort(["source_row", "start"], descending=[False, True], nulls_last=True)
    later = j.filter(during).sort(["source_row", "start"])
    return (
        pl.concat([at_start.with_columns(pl.lit(0).alias("_rank")), later.with_columns(pl.lit(1).alias("_rank"))])
        .sort(["source_row", "_rank"], maintain_order=True)
        .group_by("source_row", maintain_order=True)
        .first()
        .select("source_row", value)
    )


def enrollments(df: pl.DataFrame, folder: Path) -> pl.DataFrame:
    program = _first_code(df, "type", None, "program")
    billing = (
        df.select("source_row", pl.col("extension").alias("_e"))
        .explode("_e")
        .filter(pl.col("_e").struct.field("url").str.ends_with(BILLING_PROVIDER_EXTENSION))
        .select("source_row", ref_id(pl.col("_e").struct.field("valueReference")).alias("_billing"))
        .group_by("source_row", maintain_order=True)
        .first()
    )
    episodes = df.join(program, on="source_row", how="left").join(billing, on="source_row", how="left").select(
        "source_row",
        ref_id(pl.col("patient")).alias("patient_id"),
        pl.coalesce("program", pl.col("type").list.first().struct.field("text")).alias("program"),
        ref_id(pl.col("managingOrganization")).alias("facility_id"),
        pl.coalesce("_billing", ref_id(pl.col("careManager"))).alias("billing_provider_id"),
        fhir_date(pl.col("period").struct.field("start")).alias("enrolled_on"),
        fhir_date(pl.col("period").struct.field("end")).alias("discharged_on"),
        pl.col("diagnosis").alias("_diagnosis"),
    )
    # payer: the Coverage in force on the first day of the episode (see _pick_by_period)
    payer = pl.DataFrame(schema={"source_row": pl.Int64, "payer_id": pl.String})
    coverage = _context(folder, "Coverage")
    if coverage is not None and coverage.height:
        cov = coverage.select(
            ref_id(pl.col("beneficiary")).alias("patient_id"),
            fhir_date(pl.col("period").struct.field("start")).alias("start"),
            fhir_date(pl.col("period").struct.field("end")).alias("end"),
            pl.coalesce(
                ref_id(pl.col("payor").list.first()), pl.col("payor").list.first().struct.field("display")
            ).alias("payer_id"),
        )
        payer = _pick_by_period(episodes, cov, "payer_id")
    # consent: the latest active Consent dated on or before the first day, else the first during the episode
    consent = pl.DataFrame(schema={"source_row": pl.Int64, "consent_on": pl.String})
    consents = _context(folder, "Consent")
    if consents is not None and consents.height:
        con = consents.select(
            ref_id(pl.col("patient")).alias("patient_id"),
            fhir_date(pl.col("dateTime")).alias("start"),
            pl.lit(None, pl.String).alias("end"),
            fhir_date(pl.col("dateTime")).alias("consent_on"),
        ).filter(pl.col("start").is_not_null())
        consent = _pick_by_period(episodes, con, "consent_on")
    # diagnosis: the ICD-10 code of the episode's first-ranked diagnosis Condition
    diagnosis = pl.DataFrame(schema={"source_row": pl.Int64, "diagnosis_code": pl.String})
    conditions = _context(folder, "Condition")
    if conditions is not None and conditions.height:
        icd = _first_code(conditions.rename({"source_row": "_row"}).with_columns(pl.col("id").alias("source_row")),
                          "code", ICD10_SYSTEMS, "diagnosis_code").rename({"source_row": "_condition"})
        diagnosis = (
            episodes.select("source_row", pl.col("_diagnosis"))
            .explode("_diagnosis")
            .select(
                "source_row",
                ref_id(pl.col("_diagnosis").struct.field("condition")).alias("_condition"),
                pl.col("_diagnosis").struct.field("rank").fill_null(1 << 30).alias("_rank"),
                pl.int_range(pl.len()).over("source_row").alias("_pos"),
            )
            .join(icd, on="_condition", how="inner")
            .sort(["source_row", "_rank", "_pos"])
            .group_by("source_row", maintain_order=True)
            .first()
            .select("source_row", "diagnosis_code")
        )
    return (
        episodes.join(payer, on="source_row", how="left")
        .join(consent, on="source_row", how="left")
        .join(diagnosis, on="source_row", how="left")
        .select(
            "patient_id", "program", "payer_id", "facility_id", "billing_provider_id", "enrolled_on",
            "consent_on", "discharged_on", "diagnosis_code", "source_row",
        )
        .sort("source_row")
    )


def read_resource_file(path: Path, table: str, instruments: dict[str, str] | None = None) -> pl.DataFrame:
    """One Bulk Data NDJSON file of `table` -> canonical text columns plus source_row."""
    resource = resource_of(path.name)
    if resource is None and misnamed_table(path.name) is not None:
        raise ExtractError(
            f"{path}: not a FHIR Bulk Data file name (expected <Resource>[_N].ndjson, e.g. Encounter_2.ndjson);"
            " not read: rename it"
        )
    if resource is None or TABLE_OF_RESOURCE.get(resource) != table:
        expected = next((r for r, t in TABLE_OF_RESOURCE.items() if t == table), None)
        raise ExtractError(
            f"{path}: not a FHIR file for table {table} "
            f"({'expected ' + expected + '[_N].ndjson' if expected else 'no FHIR resource maps to ' + table})"
        )
    df = read_ndjson(path, resource)
    if table == "encounters":
        return encounters(df)
    if table == "assessments":
        return assessments(df, instruments if instruments is not None else default_instruments())
    return enrollments(df, path.parent)
