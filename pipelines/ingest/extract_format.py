"""Extract format v1: the tables a drop folder holds, their columns, types and which are required.

This is the contract with the EHR side (documented in docs/extract-format.md). Billing rules are not
here: they live in data/reference/*.csv.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # id | text | date | timestamp | int | decimal | bool | month | time
    required: bool = False
    # billing-critical: a value that cannot be read quarantines the row. A bad value in a column
    # billing does not need is a field warning instead: the row loads with the column empty.
    critical: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    required: bool = True  # must the drop hold at least one file of this table?
    key: tuple[str, ...] = ()  # natural key: a later delivery of the same key wins

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def critical_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.critical]


def _cols(spec: str) -> tuple[Column, ...]:
    """'entry_id:id*, minutes:int*, program:text!, name:text' -> Columns.

    `*` = required (and so billing-critical); `!` = optional but billing-critical (a bad value
    quarantines the row); neither = optional and not needed for billing (a bad value is a field
    warning, the row loads with the column empty)."""
    out = []
    for part in spec.split(","):
        name, typ = part.strip().split(":")
        required, critical = typ.endswith("*"), typ.endswith(("*", "!"))
        out.append(Column(name, typ.rstrip("*!"), required, critical))
    return tuple(out)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "time_entries",
            _cols(
                "entry_id:id*, patient_id:id*, staff_id:id*, service_date:date*, minutes:int*,"
                " activity:text*, program:text!, start_time:time, end_time:time, documented_at:timestamp,"
                " encounter_id:id, deleted:bool!"
            ),
            key=("entry_id",),
        ),
        Table(
            "staff",
            _cols("staff_id:id*, role:text*, facility_id:id*, name:text, annual_cost:decimal, fte:decimal"),
            key=("staff_id",),
        ),
        Table(
            "enrollments",
            _cols(
                "patient_id:id*, program:text*, payer_id:id*, facility_id:id*, billing_provider_id:id*,"
                " enrolled_on:date*, consent_on:date!, discharged_on:date!, diagnosis_code:text!,"
                " non_duplicative_care_documented:bool!, payer_from:date!, discharge_reason:text"
            ),
            key=("patient_id", "program", "enrolled_on"),
        ),
        Table(
            "psych_reviews",
            _cols("review_id:id*, patient_id:id*, review_date:date*, consultant_id:id*"),
            key=("review_id",),
        ),
        Table(
            "encounters",
            _cols("encounter_id:id*, patient_id:id*, encounter_date:date*, provider_id:id*, cpt_code:text*"),
            key=("encounter_id",),
        ),
        Table(
            "payers",
            _cols(
                "payer_id:id*, name:text, rule_set:text*, count_consultant_time:bool!,"
                " max_add_on_units:int!"
            ),
            required=False,
            key=("payer_id",),
        ),
        Table(
            "assessments",
            _cols("patient_id:id*, assessment_date:date*, instrument:text*, score:decimal"),
            required=False,
            key=("patient_id", "assessment_date", "instrument"),
        ),
        Table(
            "facilities",
            _cols("facility_id:id*, facility_type:text*, name:text, covered_from:date!"),
            required=False,
            key=("facility_id",),
        ),
        # advanced primary care management (APCM, G0556-G0558) billed by the practice for a patient-month:
        # in such a month the engine bills the APCM behavioral-health add-ons (docs/billing-rules.md, APCM)
        Table(
            "apcm",
            _cols("patient_id:id*, service_month:month*, apcm_code:text*, billing_provider_id:id*"),
            required=False,
            key=("patient_id", "service_month"),
        ),
        Table(
            "program_costs",
            _cols("month:month*, facility_id:id*, category:text*, amount:decimal*"),
            required=False,
            key=("month", "facility_id", "category"),
        ),
        # --- claims out (X12 837P) and payments in (X12 835): optional tables, docs/claims-and-remittances.md
        Table(
            "patients",
            _cols(
                "patient_id:id*, member_id:text, last_name:text, first_name:text, birth_date:date, sex:text,"
                " address_line:text, city:text, state:text, postal_code:text"
            ),
            required=False,
            key=("patient_id",),
        ),
        Table(
            "providers",
            _cols("provider_id:id*, npi:text, taxonomy_code:text, last_name:text, first_name:text"),
            required=False,
            key=("provider_id",),
        ),
        Table(
            "facility_billing",
            _cols(
                "facility_id:id*, npi:text, tin:text, billing_name:text, taxonomy_code:text, address_line:text,"
                " city:text, state:text, postal_code:text, place_of_service:text"
            ),
            required=False,
            key=("facility_id",),
        ),
        # written by pipelines/x12/remittance_835.py from 835 files (or delivered as CSV). A payment is
        # payer_identifier (TRN03, else the payer's N1*PR id) + trace_number (TRN02): two payers may
        # use one trace number (docs/claims-and-remittances.md)
        Table(
            "remittance_payments",
            _cols(
                "payer_identifier:text, trace_number:text*, payer_edi_id:text, payer_name:text,"
                " payment_date:date!, payment_amount:decimal*, credit_debit:text, payment_method:text"
            ),
            required=False,
            key=("trace_number", "payer_identifier"),
        ),
        Table(
            "remittance_claims",
            _cols(
                "trace_number:text*, claim_index:int*, payer_edi_id:text, payment_date:date!, claim_id:text*,"
                " claim_status:text*, charge:decimal*, paid:decimal*, patient_responsibility:decimal!,"
                " payer_claim_control_number:text, member_id:text, payer_identifier:text"
            ),
            required=False,
            key=("trace_number", "claim_index", "payer_identifier"),
        ),
        Table(
            "remittance_lines",
            _cols(
                "trace_number:text*, claim_index:int*, line_index:int*, code:text*, modifiers:text,"
                " charge:decimal*, paid:decimal*, units:decimal!, service_date:date!, line_control_number:text,"
                " payer_identifier:text, original_code:text"
            ),
            required=False,
            key=("trace_number", "claim_index", "line_index", "payer_identifier"),
        ),
        Table(
            "remittance_adjustments",
            _cols(
                "trace_number:text*, claim_index:int*, line_index:int!, adjustment_index:int*, kind:text*,"
                " group_code:text, reason_code:text*, amount:decimal!, quantity:decimal!, payer_identifier:text"
            ),
            required=False,
            key=("trace_number", "claim_index", "adjustment_index", "payer_identifier"),
        ),
        Table(
            "remittance_provider_adjustments",
            _cols(
                "payer_identifier:text, trace_number:text*, adjustment_index:int*, provider_id:text,"
                " fiscal_period_date:date!, reason_code:text*, reference_id:text, amount:decimal*"
            ),
            required=False,
            key=("trace_number", "adjustment_index", "payer_identifier"),
        ),
    )
}

# Closed vocabularies, checked at ingest against the reference tables (rules as data).
ACCEPTED_VALUES: dict[tuple[str, str], tuple[str, str]] = {
    ("time_entries", "activity"): ("ref_activities", "activity"),
    ("time_entries", "program"): ("ref_roles", "program"),
    ("enrollments", "program"): ("ref_roles", "program"),
    ("staff", "role"): ("ref_roles", "role"),
    ("payers", "rule_set"): ("ref_code_thresholds", "rule_set"),
    ("assessments", "instrument"): ("ref_instruments", "instrument"),
    ("facilities", "facility_type"): ("ref_facility_types", "facility_type"),
}

# Columns whose values are matched case-insensitively (stored lower-case).
LOWER_CASE = {"payer_id", "program", "role", "activity", "rule_set", "category", "instrument", "facility_type"}

RAW_TABLES = [f"raw_{t}" for t in TABLES]  # where ingest lands each table
