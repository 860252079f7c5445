"""835 remittances with known outcomes for claim lines of a warehouse (the synthetic sample and the
tests): most lines paid at the expected amount (contractual write-off CO-45 of charge - allowed,
patient coinsurance PR-2 per the payer row), some denied with typical CoCM reasons, some underpaid,
a few never answered. Outcomes are drawn in SQL from a hash of the claim id and a seed, so the same
warehouse and seed give the same files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.x12.remittance_835 import write_835

# outcome shares (per claim) and the typical CoCM denial reasons: CARC, RARC
OUTCOMES = (("unanswered", 0.04), ("denied", 0.08), ("underpaid", 0.08))
DENIALS = (("50", "N362"), ("97", "N20"), ("16", "M76"), ("4", "N822"), ("119", ""))
UNDERPAID_SHARE = 0.9


def outcome_lines(conn: duckdb.DuckDBPyConnection, months: list[str], seed: int = 7,
                  forced: dict[str, tuple[str, str, str]] | None = None) -> list[dict]:
    """Claim lines of the months (fct_x12_claim_lines, claims that are complete) with an outcome
    (paid, underpaid, denied, unanswered), the allowed amount, patient share and adjustments."""
    month_list = ", ".join(f"'{m}-01'::date" for m in months)
    cuts = []
    acc = 0.0
    for name, share in OUTCOMES:
        acc += share
        cuts.append(f"when u < {acc} then '{name}'")
    denial_cases = " ".join(f"when {i} then '{c}'" for i, (c, _) in enumerate(DENIALS))
    remark_cases = " ".join(f"when {i} then '{r}'" for i, (_, r) in enumerate(DENIALS))
    rows = conn.sql(
        f"""
        with lines as (
            select l.*, coalesce(p.patient_coinsurance_share, 0) as coinsurance,
                   -- the 835's CLP06 code list differs from the 837's SBR09 (ref_payer_edi)
                   (select any_value(e.remit_claim_filing_indicator) from ref_payer_edi as e
                    where e.payer_id = l.payer_id) as remit_claim_filing_indicator,
                   (hash(l.claim_id || '|{seed}') % 1000000) / 1000000.0 as u,
                   hash(l.claim_id || '|reason|{seed}') % {len(DENIALS)} as r
            from fct_x12_claim_lines as l
            left join ref_payers as p
                on p.payer_id = l.payer_id and l.date_of_service >= p.effective_from
                and (p.effective_to is null or l.date_of_service <= p.effective_to)
            where l.service_month in ({month_list}) and l.claim_missing_elements is null
        )
        select *, case {' '.join(cuts)} else 'paid' end as outcome,
               case r {denial_cases} end as denial_reason,
               case r {remark_cases} end as denial_remark
        from lines order by payer_id, service_month, claim_id, line_number
        """
    ).pl().to_dicts()
    for row in rows:
        if forced and row["claim_line_id"] in forced:
            row["outcome"], row["denial_reason"], row["denial_remark"] = forced[row["claim_line_id"]]
        charge = round(float(row["charge"]), 2)
        expected = round(float(row["expected_amount"]), 2)
        if row["outcome"] == "denied":
            allowed, adjustments = 0.0, [("CO", row["denial_reason"], charge)]
            row["remarks"] = [row["denial_remark"]] if row["denial_remark"] else []
        else:
            allowed = expected if row["outcome"] == "paid" else round(expected * UNDERPAID_SHARE, 2)
            patient = round(allowed * float(row["coinsurance"]), 2)
            adjustments = [("CO", "45", round(charge - allowed, 2))] + ([("PR", "2", patient)] if patient else [])
            row["remarks"] = []
        row["allowed"] = allowed
        row["adjustments"] = adjustments
        row["paid"] = round(charge - sum(a[2] for a in adjustments), 2)
    return rows


def write_sample_835s(conn: duckdb.DuckDBPyConnection, folder: Path, months: list[str], seed: int = 7,
                      forced: dict[str, tuple[str, str, str]] | None = None, payee_npi: str = "1234567893"
                      ) -> list[Path]:
    """One 835 per payer and service month into `folder` (remit_<payer>_<YYYY-MM>.835), paid on the
    20th of the month after the service month; unanswered claims are left out."""
    cfg = dict(conn.sql("select setting, value from ref_x12_settings").fetchall())
    cfg |= {"payee_name": cfg["submitter_name"], "payee_npi": payee_npi}
    lines = [r for r in outcome_lines(conn, months, seed, forced) if r["outcome"] != "unanswered"]
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for r in lines:
        claims = groups.setdefault((r["payer_id"], f"{r['service_month']:%Y-%m}"), {})
        claim = claims.setdefault(r["claim_id"], {
            "claim_id": r["claim_id"], "payer_name": r["payer_name"], "payer_edi_id": r["payer_edi_id"],
            "member_id": r["member_id"], "last_name": r["patient_last_name"], "first_name": r["patient_first_name"],
            "claim_filing_indicator": r["remit_claim_filing_indicator"],
            "payer_claim_control_number": "ICN" + r["claim_id"][1:13], "lines": [],
        })
        claim["lines"].append({
            "code": r["code"], "modifiers": r["modifiers"], "charge": r["charge"], "paid": r["paid"],
            "units": r["units"], "service_date": r["date_of_service"],
            "line_control_number": r["line_control_number"], "adjustments": r["adjustments"],
            "remarks": r["remarks"],
        })
    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for n, ((payer_id, month), claims) in enumerate(sorted(groups.items()), start=1):
        for c in claims.values():
            c["status"] = "4" if all(float(ln["paid"]) == 0 for ln in c["lines"]) else "1"
        first = dt.date.fromisoformat(f"{month}-01")
        paid_on = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=20)
        text_ = write_835(list(claims.values()), cfg, 500000 + n, paid_on, f"EFT{month.replace('-', '')}{n:04d}")
        path = folder / f"remit_{payer_id}_{month}.835"
        path.write_text(text_)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------------
# The synthetic sample's claims loop: demographics for the 837P and 835s for its closed months


def npi_with_check_digit(nine: str) -> str:
    """A 10-digit NPI from 9 digits: Luhn check digit over the prefix 80840 (synthetic NPIs)."""
    digits = [int(c) for c in "80840" + nine]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return nine + str((10 - total % 10) % 10)


def write_sample_demographics(conn: duckdb.DuckDBPyConnection, drop_dir: Path) -> list[Path]:
    """patients.csv, providers.csv and facility_billing.csv for a drop's enrollments and staff
    (synthetic: names, member ids, NPIs and addresses are made up and derived from the ids, so the
    files are the same on every run)."""
    drop_dir = Path(drop_dir)
    out = []
    queries = {
        "patients.csv": """
            select patient_id, 'SYN' || upper(substr(md5(patient_id), 1, 8)) as member_id,
                   'Synthetic' || right(patient_id, 4) as last_name, 'Pat' as first_name,
                   (date '1940-01-01' + (hash(patient_id) % 20000)::integer)::varchar as birth_date,
                   case when hash(patient_id) % 2 = 0 then 'F' else 'M' end as sex,
                   (hash(patient_id) % 900 + 100)::varchar || ' Sample St' as address_line, 'Durham' as city,
                   'NC' as state, '27701' as postal_code
            from (select distinct patient_id from stg_enrollments) order by 1""",
        "providers.csv": """
            select staff_id as provider_id, '1' || lpad((hash(staff_id) % 100000000)::varchar, 8, '0') as npi9,
                   '207Q00000X' as taxonomy_code, 'Provider' || right(staff_id, 4) as last_name, 'Sam' as first_name
            from stg_staff where role in ('billing_practitioner', 'bh_clinician') order by 1""",
        "facility_billing.csv": """
            select f.facility_id, '1' || lpad((hash(f.facility_id || 'org') % 100000000)::varchar, 8, '0') as npi9,
                   lpad((hash(f.facility_id || 'tin') % 1000000000)::varchar, 9, '0') as tin,
                   'Sample Clinic ' || f.facility_id as billing_name, '261QM0801X' as taxonomy_code,
                   (hash(f.facility_id) % 900 + 100)::varchar || ' Main St' as address_line, 'Durham' as city,
                   'NC' as state, '277010001' as postal_code,
                   case coalesce(t.facility_type, 'physician_office') when 'fqhc' then '50' when 'rhc' then '72'
                        else '11' end as place_of_service
            from (select distinct facility_id from stg_enrollments) as f
            left join stg_facilities as t using (facility_id) order by 1""",
    }
    for name, query in queries.items():
        frame = conn.sql(query).pl()
        if "npi9" in frame.columns:
            frame = frame.with_columns(frame["npi9"].map_elements(npi_with_check_digit, return_dtype=str).alias("npi9"))
            frame = frame.rename({"npi9": "npi"})
            if name == "providers.csv":
                frame = frame.select("provider_id", "npi", "taxonomy_code", "last_name", "first_name")
            else:
                frame = frame.select("facility_id", "npi", "tin", "billing_name", "taxonomy_code", "address_line",
                                     "city", "state", "postal_code", "place_of_service")
        frame.write_csv(drop_dir / name)
        out.append(drop_dir / name)
    return out


def write_sample_claims_loop(drop_dir: Path, as_of: dt.date, seed: int = 7, workdir: Path | None = None) -> list[Path]:
    """Add the claims loop to a synthetic drop: demographics tables, then an 835 per payer and closed
    month of the claims the drop bills as of `as_of` (built in a scratch warehouse)."""
    import tempfile

    from pipelines.ingest.load import load_drop
    from pipelines.outputs.close import months_between
    from pipelines.warehouse.models import MODELS, in_dependency_order, materialize
    from pipelines.warehouse.reference import seed_reference
    from pipelines.warehouse.run_state import snapshot_claims, write_run_parameters
    from pipelines.x12.remittance_835 import load_remittances

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for attempt in ("demographics", "remittances"):
            conn = duckdb.connect(str(Path(tmp) / f"{attempt}.duckdb"))
            try:
                seed_reference(conn)
                write_run_parameters(conn, as_of)
                snapshot_claims(conn)
                load_drop(conn, drop_dir)
                load_remittances(conn, drop_dir)
                for model in in_dependency_order(MODELS):
                    materialize(conn, model)
                if attempt == "demographics":
                    written = write_sample_demographics(conn, drop_dir)
                    continue
                first = conn.sql("select strftime(min(service_month), '%Y-%m') from fct_x12_claim_lines").fetchall()[0][0]
                last = f"{(as_of.replace(day=1) - dt.timedelta(days=1)):%Y-%m}"
                if first:
                    written += write_sample_835s(conn, Path(drop_dir), months_between(first, last), seed)
            finally:
                conn.close()
    return written
