-- purpose: program ROI for all facilities together per month (the leadership chart and the overview
--          trend): expected revenue, costs (the open month prorated, see fct_program_roi), net, ROI %,
--          the revenue left on the table, the billing rate (patient-months billed / enrolled) and
--          whether the month's data is incomplete; the running (cumulative) net counts complete
--          months only, so a month with missing data never reads as a $0 month
-- grain: service_month
-- upstream: fct_program_roi
with monthly as (
    select
        service_month,
        -- 'future': a month after the as-of date that holds only program costs (fct_program_roi)
        case
            when bool_or(month_status = 'open') then 'open'
            when bool_and(month_status = 'future') then 'future'
            else 'closed'
        end as month_status,
        round(coalesce(sum(expected_revenue), 0), 2) as expected_revenue,
        coalesce(sum(claim_lines), 0)::bigint as claim_lines,
        coalesce(sum(patients_billed), 0)::bigint as patients_billed,
        coalesce(sum(patient_months_enrolled), 0)::bigint as patient_months_enrolled,
        round(coalesce(sum(care_manager_cost), 0), 2) as care_manager_cost,
        round(coalesce(sum(other_cost), 0), 2) as other_cost,
        round(coalesce(sum(total_cost), 0), 2) as total_cost,
        round(coalesce(sum(net), 0), 2) as net,
        round(coalesce(sum(revenue_left_on_table), 0), 2) as revenue_left_on_table,
        max(cost_share_of_month) as cost_share_of_month,
        bool_or(is_incomplete) as is_incomplete,
        any_value(incomplete_reasons) as incomplete_reasons
    from fct_program_roi
    group by service_month
),

final as (
    select
        *,
        round(sum(net) filter (where not is_incomplete) over (order by service_month), 2) as cumulative_net,
        case when total_cost > 0 then round(100 * net / total_cost, 1) end as roi_pct,
        case when patient_months_enrolled > 0
            then round(100 * patients_billed / patient_months_enrolled, 1) end as billing_rate_pct
    from monthly
)

select * from final
order by service_month
