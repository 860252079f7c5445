-- purpose: program ROI per facility over the closed months whose data is complete, plus one
--          all-facilities row (is_total); ROI % = net / total cost over those months (the monthly ROI %
--          is not averaged); closed months with incomplete data are left out and counted
--          (incomplete_months_excluded); "if recovered" adds the revenue left on the table
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
        count(distinct service_month) filter (where not is_incomplete) as closed_months,
        count(distinct service_month) filter (where is_incomplete) as incomplete_months_excluded,
        round(coalesce(sum(expected_revenue) filter (where not is_incomplete), 0), 2) as expected_revenue,
        coalesce(sum(claim_lines) filter (where not is_incomplete), 0)::bigint as claim_lines,
        coalesce(sum(patients_billed) filter (where not is_incomplete), 0)::bigint as patients_billed,
        coalesce(sum(patient_months_enrolled) filter (where not is_incomplete), 0)::bigint as patient_months_enrolled,
        round(coalesce(sum(care_manager_cost) filter (where not is_incomplete), 0), 2) as care_manager_cost,
        round(coalesce(sum(other_cost) filter (where not is_incomplete), 0), 2) as other_cost,
        round(coalesce(sum(total_cost) filter (where not is_incomplete), 0), 2) as total_cost,
        round(coalesce(sum(net) filter (where not is_incomplete), 0), 2) as net,
        round(coalesce(sum(revenue_left_on_table) filter (where not is_incomplete), 0), 2) as revenue_left_on_table
    from closed
    group by grouping sets ((facility_id), ())
),

final as (
    select
        *,
        case when total_cost > 0 then round(100 * net / total_cost, 1) end as roi_pct,
        round(net + revenue_left_on_table, 2) as net_if_recovered,
        case when total_cost > 0 then round(100 * (net + revenue_left_on_table) / total_cost, 1) end
            as roi_pct_if_recovered
    from totals
    -- no all-facilities row when there are no closed months at all
    where not is_total or closed_months + incomplete_months_excluded > 0
)

select * from final
order by is_total, facility_id
