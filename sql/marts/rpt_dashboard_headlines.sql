-- purpose: the headline numbers the dashboard pages show on their cards and the index (one row), so
--          no page adds anything up itself: open-month worklist and pace, the outreach plan, the
--          compliance items (gated months, late documentation, quarantine) and closed-month ROI
-- grain: one row
-- upstream: rpt_worklist_pace, rpt_outreach_summary, fct_care_manager_capacity, fct_compliance_blocked_months, fct_compliance_documentation_lag, fct_compliance_quarantine, rpt_program_roi_monthly, rpt_program_roi_facility, rpt_program_roi_break_even, rpt_revenue_gap_by_reason, rpt_revenue_gap_patient_months, ref_settings
with worklist as (
    select
        count(*) as patient_programs_enrolled,
        count(*) filter (where dollars_gained > 0) as patient_programs_reachable,
        count(*) filter (where coalesce(blockers, '') <> '') as patient_programs_blocked,
        round(coalesce(sum(dollars_gained) filter (where dollars_gained > 0), 0), 2) as dollars_reachable,
        count(*) filter (where pace_status = 'behind pace') as patient_programs_behind_pace,
        count(*) filter (where pace_status = 'on pace') as patient_programs_on_pace
    from rpt_worklist_pace
),

outreach as (
    select
        count(*) filter (where care_manager_id is not null) as care_managers,
        coalesce(sum(capacity_minutes), 0)::bigint as outreach_capacity_minutes,
        coalesce(sum(candidates), 0)::bigint as outreach_candidates,
        coalesce(sum(planned_patients), 0)::bigint as outreach_planned_patients,
        coalesce(sum(planned_minutes), 0)::bigint as outreach_planned_minutes,
        round(coalesce(sum(planned_dollars), 0), 2) as outreach_planned_dollars,
        round(coalesce(sum(unplanned_dollars), 0), 2) as outreach_unplanned_dollars
    from rpt_outreach_summary
),

capacity as (
    select
        max(business_days_left) as business_days_left,
        max(hours_per_day) as care_manager_hours_per_day,
        max(cocm_share) as care_manager_cocm_share
    from fct_care_manager_capacity
),

blocked as (
    select
        coalesce(sum(patient_months) filter (where month_status = 'closed'), 0)::bigint as blocked_months_closed,
        coalesce(sum(patient_months) filter (where month_status = 'open'), 0)::bigint as blocked_months_open,
        round(coalesce(sum(dollars_held_back) filter (where month_status = 'closed'), 0), 2) as blocked_dollars_closed,
        round(coalesce(sum(dollars_held_back) filter (where month_status = 'open'), 0), 2) as blocked_dollars_open
    from fct_compliance_blocked_months
),

doc_lag as (
    select
        coalesce(sum(entries), 0)::bigint as documented_entries,
        coalesce(sum(late_entries), 0)::bigint as late_entries,
        coalesce(sum(late_minutes), 0)::bigint as late_minutes,
        coalesce(sum(undated_entries), 0)::bigint as undated_entries,
        count(distinct staff_id) filter (where late_entries > 0) as staff_with_late_entries,
        case when sum(minutes) > 0 then round(100.0 * sum(late_minutes) / sum(minutes), 1) end as late_minutes_pct
    from fct_compliance_documentation_lag
),

setting as (
    select try_cast(value as integer) as late_documentation_days
    from ref_settings
    where setting = 'late_documentation_days'
),

quarantined as (
    select
        coalesce(sum(rows_quarantined), 0)::bigint as quarantined_rows,
        count(*) as quarantine_reasons
    from fct_compliance_quarantine
),

roi as (
    select
        expected_revenue as roi_closed_revenue,
        total_cost as roi_closed_cost,
        net as roi_closed_net,
        roi_pct as roi_closed_pct,
        closed_months as roi_closed_months,
        incomplete_months_excluded as roi_incomplete_months_excluded,
        revenue_left_on_table as roi_closed_left_on_table,
        net_if_recovered as roi_closed_net_if_recovered,
        roi_pct_if_recovered as roi_closed_pct_if_recovered
    from rpt_program_roi_facility
    where is_total
),

roi_latest as (
    select cumulative_net as roi_cumulative_net, service_month as roi_latest_month
    from rpt_program_roi_monthly
    order by service_month desc
    limit 1
),

break_even as (
    select
        care_managers as roi_care_managers,
        billed_patient_months_per_care_manager as roi_billed_per_care_manager,
        break_even_billed_patient_months_per_care_manager as roi_break_even_per_care_manager,
        revenue_per_billed_patient_month as roi_revenue_per_billed_patient_month,
        cost_per_care_manager_month as roi_cost_per_care_manager_month
    from rpt_program_roi_break_even
),

gap as (
    select
        round(coalesce(sum(dollars), 0), 2) as gap_dollars,
        (select count(*) from rpt_revenue_gap_patient_months) as gap_patient_months
    from rpt_revenue_gap_by_reason
),

final as (
    select *
    from worklist
    cross join outreach
    cross join capacity
    cross join blocked
    cross join doc_lag
    cross join (select max(late_documentation_days) as late_documentation_days from setting)
    cross join quarantined
    cross join gap
    left join roi on true
    left join roi_latest on true
    left join break_even on true
)

select * from final
