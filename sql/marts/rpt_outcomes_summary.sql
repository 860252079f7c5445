-- purpose: the outcomes page's CoCM operational rates with their counts (n of N), for the whole
--          program, per month, per care manager and per facility (docs/outcomes.md); follow-up counts
--          are patient-months (active months of the group), 10-14 week response counts are episodes
--          judged in the group (pending windows are not counted); the published measures (per patient)
--          are rpt_outcome_measures; no patient identifiers
-- grain: grouping ('total', 'month', 'care_manager', 'facility') and its key (service_month,
--        care_manager_id or facility_id)
-- upstream: rpt_outcomes_monthly, fct_outcome_episodes, stg_staff
with monthly as (
    select * from rpt_outcomes_monthly
),

grouped as (
    select
        case
            when grouping(service_month) = 0 then 'month'
            when grouping(care_manager_id) = 0 then 'care_manager'
            when grouping(facility_id) = 0 then 'facility'
            else 'total'
        end as grouping_level,
        service_month,
        care_manager_id,
        facility_id,
        sum(active_patients)::bigint as active_patient_months,
        sum(without_baseline)::bigint as without_baseline,
        sum(baseline_before_data)::bigint as baseline_before_data,
        sum(follow_up_in_month)::bigint as follow_up_in_month,
        sum(follow_up_last_4_weeks)::bigint as follow_up_last_4_weeks,
        sum(early_judged)::bigint as early_judged,
        sum(early_responses)::bigint as early_responses
    from monthly
    group by grouping sets ((service_month), (care_manager_id), (facility_id), ())
),

-- episodes in care today flagged "not improving, no psychiatric review since week 10", and time in
-- program, per care manager / facility / total (not per month)
episodes as (
    select
        case
            when grouping(care_manager_id) = 0 then 'care_manager'
            when grouping(facility_id) = 0 then 'facility'
            else 'total'
        end as grouping_level,
        care_manager_id,
        facility_id,
        count(*) filter (where not_improving_without_review) as not_improving_without_review,
        count(*) as episodes,
        count(*) filter (where not has_baseline and not started_before_data) as episodes_without_baseline,
        count(*) filter (where started_before_data) as episodes_started_before_data,
        median(days_in_program)::integer as median_days_in_program
    from fct_outcome_episodes
    group by grouping sets ((care_manager_id), (facility_id), ())
),

final as (
    select
        g.*,
        s.name as care_manager_name,
        e.not_improving_without_review,
        e.episodes,
        e.episodes_without_baseline,
        e.episodes_started_before_data,
        e.median_days_in_program,
        round(g.follow_up_last_4_weeks / nullif(g.active_patient_months, 0), 4) as follow_up_rate,
        round(g.early_responses / nullif(g.early_judged, 0), 4) as early_response_rate
    from grouped as g
    left join episodes as e
        on e.grouping_level = g.grouping_level
        and e.care_manager_id is not distinct from g.care_manager_id
        and e.facility_id is not distinct from g.facility_id
    left join stg_staff as s on g.grouping_level = 'care_manager' and s.staff_id = g.care_manager_id
)

select * from final
