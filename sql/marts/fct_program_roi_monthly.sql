-- purpose: program ROI for all facilities together per month (the leadership chart): expected
--          revenue, costs, net, the running (cumulative) net over the months and ROI %; the open
--          month is month to date
-- grain: service_month
-- upstream: fct_program_roi
with monthly as (
    select
        service_month,
        case when bool_or(month_status = 'open') then 'open' else 'closed' end as month_status,
        round(coalesce(sum(expected_revenue), 0), 2) as expected_revenue,
        coalesce(sum(claim_lines), 0)::bigint as claim_lines,
        coalesce(sum(patients_billed), 0)::bigint as patients_billed,
        coalesce(sum(patient_months_enrolled), 0)::bigint as patient_months_enrolled,
        round(coalesce(sum(care_manager_cost), 0), 2) as care_manager_cost,
        round(coalesce(sum(other_cost), 0), 2) as other_cost,
        round(coalesce(sum(total_cost), 0), 2) as total_cost,
        round(coalesce(sum(net), 0), 2) as net
    from fct_program_roi
    group by service_month
),

final as (
    select
        *,
        round(sum(net) over (order by service_month), 2) as cumulative_net,
        case when total_cost > 0 then round(100 * net / total_cost, 1) end as roi_pct
    from monthly
)

select * from final
order by service_month
