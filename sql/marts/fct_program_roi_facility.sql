-- purpose: program ROI per facility over the closed months, plus one all-facilities row
--          (is_total); ROI % = net / total cost over those months (the monthly ROI % is not averaged)
-- grain: facility_id (is_total = false), one row with is_total = true and facility_id null
-- upstream: fct_program_roi
with closed as (
    select * from fct_program_roi
    where month_status = 'closed'
),

totals as (
    select
        facility_id,
        grouping(facility_id) = 1 as is_total,
        count(distinct service_month) as closed_months,
        round(coalesce(sum(expected_revenue), 0), 2) as expected_revenue,
        coalesce(sum(claim_lines), 0)::bigint as claim_lines,
        coalesce(sum(patients_billed), 0)::bigint as patients_billed,
        coalesce(sum(patient_months_enrolled), 0)::bigint as patient_months_enrolled,
        round(coalesce(sum(care_manager_cost), 0), 2) as care_manager_cost,
        round(coalesce(sum(other_cost), 0), 2) as other_cost,
        round(coalesce(sum(total_cost), 0), 2) as total_cost,
        round(coalesce(sum(net), 0), 2) as net
    from closed
    group by grouping sets ((facility_id), ())
),

final as (
    select
        *,
        case when total_cost > 0 then round(100 * net / total_cost, 1) end as roi_pct
    from totals
    -- no all-facilities row when there are no closed months at all
    where not is_total or closed_months > 0
)

select * from final
order by is_total, facility_id
