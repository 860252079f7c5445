-- purpose: program economics per facility and month: expected revenue (billable amounts, month to
--          date for the open month) against care-manager cost (roster annual_cost x fte / 12) and
--          other program costs; net, cumulative net and ROI %
-- grain: facility_id, service_month
-- upstream: fct_patient_months, fct_claims, stg_staff, stg_program_costs
with months as (
    select
        facility_id,
        service_month,
        any_value(month_status) as month_status,
        round(sum(billable_amount), 2) as expected_revenue,
        count(*) filter (where billable_amount > 0) as patients_billed,
        count(*) as patient_months_enrolled
    from fct_patient_months
    group by all
),

claim_lines as (
    select facility_id, service_month, count(*) as claim_lines
    from fct_claims
    group by all
),

care_manager_cost as (
    select facility_id, round(sum(annual_cost * coalesce(fte, 1)) / 12, 2) as monthly_cost
    from stg_staff
    where role = 'care_manager'
    group by all
),

other_cost as (
    select facility_id, cost_month as service_month, sum(amount) as other_cost
    from stg_program_costs
    group by all
),

joined as (
    select
        m.facility_id,
        m.service_month,
        m.month_status,
        m.expected_revenue,
        coalesce(l.claim_lines, 0) as claim_lines,
        m.patients_billed,
        m.patient_months_enrolled,
        coalesce(c.monthly_cost, 0) as care_manager_cost,
        coalesce(o.other_cost, 0) as other_cost
    from months as m
    left join claim_lines as l using (facility_id, service_month)
    left join care_manager_cost as c using (facility_id)
    left join other_cost as o using (facility_id, service_month)
),

final as (
    select
        *,
        care_manager_cost + other_cost as total_cost,
        round(expected_revenue - (care_manager_cost + other_cost), 2) as net,
        round(sum(expected_revenue - (care_manager_cost + other_cost)) over (
            partition by facility_id order by service_month
        ), 2) as cumulative_net,
        case
            when care_manager_cost + other_cost > 0
                then round(100 * (expected_revenue - (care_manager_cost + other_cost)) / (care_manager_cost + other_cost), 1)
        end as roi_pct
    from joined
)

select * from final
order by facility_id, service_month
