-- purpose: revenue left on the table in closed months, totalled by reason (patient-months, minutes,
--          dollars), with the reason's place by dollars (1 = largest) for charts and tables
-- grain: reason
-- upstream: fct_revenue_gap
with totals as (
    select
        reason,
        -- distinct row values (sqlfluff takes `distinct (` for a function call)
        count(distinct (facility_id, patient_id, program, service_month)) as patient_months,  -- noqa: ST08, LT01, LT06
        coalesce(sum(minutes), 0)::bigint as minutes,
        round(coalesce(sum(dollars), 0), 2) as dollars
    from fct_revenue_gap
    group by reason
),

final as (
    select
        *,
        row_number() over (order by dollars desc, reason nulls last) as reason_order
    from totals
)

select * from final
order by reason_order
