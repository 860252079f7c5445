-- purpose: program economics per facility and month: expected revenue (billable amounts, month to
--          date for the open month) against the program's share of care-manager cost (roster
--          annual_cost x fte / 12 x care_manager_cocm_share, the share of their time the outreach
--          plan also assumes) and other program costs; the open month's costs are prorated to the
--          days elapsed (cost_share_of_month = day of the as-of date / days in the month) so month-to-
--          date revenue meets month-to-date cost; the revenue left on the table, and whether the
--          month's data is incomplete (fct_month_completeness); net, cumulative net and ROI %. Every
--          program_costs row lands in a row: a facility-month with costs and no patient-month (a
--          training month before the first patient) has a row of its own, with no care-manager cost
--          (the roster has no hire dates) and its status from the as-of date
-- grain: facility_id, service_month
-- upstream: fct_patient_months, fct_claims, fct_revenue_gap, fct_month_completeness, stg_staff, stg_program_costs, ref_settings, run_parameters
with params as (
    select
        as_of,
        date_trunc('month', as_of)::date as open_month,
        day(as_of) / day(last_day(as_of)) as open_month_elapsed_share,
        (select max(try_cast(value as double)) from ref_settings where setting = 'care_manager_cocm_share')
            as care_manager_program_share
    from run_parameters
),

patient_months as (
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

gap as (
    select facility_id, service_month, round(sum(dollars), 2) as revenue_left_on_table
    from fct_revenue_gap
    group by all
),

care_manager_cost as (
    select facility_id, sum(annual_cost * coalesce(fte, 1)) / 12 as monthly_cost
    from stg_staff
    where role = 'care_manager'
    group by all
),

other_cost as (
    select facility_id, date_trunc('month', cost_month)::date as service_month, sum(amount) as other_cost
    from stg_program_costs
    group by all
),

-- the months of patients and the months of costs: a cost month without patients is kept
months as (
    select
        facility_id,
        service_month,
        coalesce(
            m.month_status,
            case
                when service_month < p.open_month then 'closed'
                when service_month = p.open_month then 'open'
                else 'future'
            end
        ) as month_status,
        coalesce(m.expected_revenue, 0) as expected_revenue,
        coalesce(m.patients_billed, 0) as patients_billed,
        coalesce(m.patient_months_enrolled, 0) as patient_months_enrolled,
        m.facility_id is not null as has_patients
    from patient_months as m
    full outer join other_cost using (facility_id, service_month)
    cross join params as p
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
        case when m.service_month = p.open_month then p.open_month_elapsed_share else 1.0 end as cost_share_of_month,
        p.care_manager_program_share,
        round(case when m.has_patients then coalesce(c.monthly_cost, 0) else 0 end * p.care_manager_program_share
            * case when m.service_month = p.open_month then p.open_month_elapsed_share else 1.0 end, 2) as care_manager_cost,
        round(coalesce(o.other_cost, 0)
            * case when m.service_month = p.open_month then p.open_month_elapsed_share else 1.0 end, 2) as other_cost,
        coalesce(g.revenue_left_on_table, 0) as revenue_left_on_table,
        coalesce(mc.is_incomplete, false) as is_incomplete,
        mc.incomplete_reasons
    from months as m
    cross join params as p
    left join claim_lines as l using (facility_id, service_month)
    left join gap as g using (facility_id, service_month)
    left join care_manager_cost as c using (facility_id)
    left join other_cost as o using (facility_id, service_month)
    left join fct_month_completeness as mc using (service_month)
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
