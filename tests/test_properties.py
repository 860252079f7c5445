"""Property-based tests over generated patient-months (hypothesis), through the real SQL models."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import Drop, build_warehouse

PAYERS = ["medicare", "nc_medicaid", "acme_commercial", "bcbs_mi"]
CAPS = {"medicare": 2, "nc_medicaid": 4}
ACTIVITIES = ["follow_up", "assessment", "case_review", "psychotherapy", "crisis", "clerical"]

entry = st.tuples(
    st.integers(min_value=1, max_value=60),  # minutes
    st.sampled_from(ACTIVITIES),
    st.sampled_from(["CM1", "CM1", "CM1", "PC1", "CS1", "BP1"]),
    st.integers(min_value=1, max_value=28),  # day
)
patient_month = st.fixed_dictionaries(
    {
        "payer": st.sampled_from(PAYERS),
        "program": st.sampled_from(["cocm", "cocm", "bhi"]),
        "subsequent": st.booleans(),
        "consent_day": st.one_of(st.none(), st.integers(min_value=1, max_value=28)),
        "review": st.booleans(),
        "entries": st.lists(entry, min_size=0, max_size=8),
        "bad_minutes": st.sampled_from(["", "0", "-5", "abc", "7.5"]),
    }
)


def _build(months: list[dict]) -> tuple:
    tmp = Path(tempfile.mkdtemp(prefix="bhi-prop-"))
    d = Drop(tmp / "drop")
    for i, spec in enumerate(months):
        for twin in ("a", "b"):  # b = a plus one countable care-manager minute
            patient = f"P{i:03d}{twin}"
            consent = f"2026-02-{spec['consent_day']:02d}" if spec["consent_day"] else None
            d.enroll(patient, payer=spec["payer"], program=spec["program"], consent_on=consent or None)
            if spec["subsequent"]:
                d.log(patient, "2026-01-10", 40)
                d.review(patient, "2026-01-12")
            for minutes, activity, staff, day in spec["entries"]:
                d.log(patient, f"2026-02-{day:02d}", minutes, staff=staff, activity=activity)
            if twin == "b":
                d.log(patient, "2026-02-28", 1)
            if spec["review"]:
                d.review(patient, "2026-02-14")
            if spec["bad_minutes"]:
                d.log(patient, "2026-02-03", spec["bad_minutes"])
    conn = build_warehouse(tmp / "w.duckdb", d.write(), "2026-03-05")
    return conn, d


# each example builds a warehouse (~1 s): few examples, no shrinking (it would take minutes)
@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(patient_month, min_size=1, max_size=12))
def test_billing_invariants(months):
    conn, d = _build(months)
    try:
        # adding a countable minute never lowers the month's expected revenue under the same rules
        lowered = conn.sql(
            """
            select a.patient_id, a.current_amount, b.current_amount
            from fct_patient_months a join fct_patient_months b
              on b.patient_id = replace(a.patient_id, 'a', 'b') and b.service_month = a.service_month
             and b.program = a.program
            where a.patient_id like '%a' and a.service_month = date '2026-02-01'
              and b.current_amount < a.current_amount
            """
        ).fetchall()
        assert lowered == []
        # add-on units never exceed the payer's cap
        for payer, cap in CAPS.items():
            over = conn.sql(
                f"select count(*) from fct_claims where payer_id = '{payer}' and code = '99494' and units > {cap}"
            ).fetchall()[0][0]
            assert over == 0
        # forbidden combinations never appear: one base code per patient-month, add-on only with a base
        assert conn.sql(
            """
            select count(*) from (
                select patient_id, service_month,
                       count(*) filter (where code in ('99492', '99493', 'G2214', '99484')) as bases,
                       count(*) filter (where code = '99494') as addons
                from fct_claims group by all
                having bases <> 1 or (addons > 0 and bool_and(code not in ('99492', '99493')))
            )
            """
        ).fetchall() == [(0,)]
        # counted + excluded + quarantined minutes = minutes ingested (those that read as whole minutes)
        ingested = sum(int(e["minutes"]) for e in d.entries if str(e["minutes"]).isdigit())
        accounted = conn.sql("select sum(minutes)::int from fct_minutes_reconciliation").fetchall()[0][0]
        assert accounted == ingested
        entries = conn.sql("select sum(entries)::int from fct_minutes_reconciliation").fetchall()[0][0]
        assert entries == len(d.entries)
    finally:
        conn.close()
