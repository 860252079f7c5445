-- purpose: revenue left on the table per closed patient-month (all its reasons together), with the
--          reasons as lists ordered by dollars (reason codes, dollars, minutes); ranked by dollars in
--          rpt_revenue_gap_patient_months_ranked (a stored global rank here would make it non-incremental)
-- grain: facility_id, patient_id, payer_id, program, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: fct_revenue_gap
with per_reason as (
    select
        facility_id,
        patient_id,
        payer_id,
        program,
        service_month,
        reason,
        coalesce(sum(minutes), 0)::bigint as minutes,
        round(coalesce(sum(dollars), 0), 2) as dollars
    from fct_revenue_gap
    group by all
),

per_month as (
    select
        facility_id,
        patient_id,
        payer_id,
        program,
        service_month,
        sum(minutes)::bigint as minutes,
        round(sum(dollars), 2) as dollars,
        list(reason order by dollars desc, reason) as reasons,
        list(dollars order by dollars desc, reason) as reason_dollars,
        list(minutes order by dollars desc, reason) as reason_minutes
    from per_reason
    group by facility_id, patient_id, payer_id, program, service_month
)

select * from per_month
