-- purpose: revenue left on the table per closed month and reason (the stacked chart), with the
--          reason's overall place by dollars so every month stacks the reasons in one order
-- grain: service_month, reason
-- upstream: fct_revenue_gap, rpt_revenue_gap_by_reason
with monthly as (
    select
        service_month,
        reason,
        -- distinct row values (sqlfluff takes `distinct (` for a function call)
        count(distinct (facility_id, patient_id, program)) as patient_months,  -- noqa: ST08, LT01, LT06
        coalesce(sum(minutes), 0)::bigint as minutes,
        round(coalesce(sum(dollars), 0), 2) as dollars
    from fct_revenue_gap
    group by service_month, reason
),

final as (
    select m.*, r.reason_order
    from monthly as m
    left join rpt_revenue_gap_by_reason as r on r.reason is not distinct from m.reason
)

select * from final
order by service_month, reason_order
