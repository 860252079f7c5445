-- purpose: revenue left on the table per closed patient-month (all its reasons together), ranked by
--          dollars, with the reasons as lists ordered by dollars (reason codes, dollars, minutes)
-- grain: facility_id, patient_id, payer_id, program, service_month
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
),

final as (
    select
        *,
        row_number() over (
            order by dollars desc, service_month desc, facility_id, patient_id, program
        ) as dollar_rank
    from per_month
)

select * from final
order by dollar_rank
