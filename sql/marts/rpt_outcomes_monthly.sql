-- purpose: measurement-based care results per month, program, facility and care manager, with the
--          counts behind every rate (n of N): active patients, without a baseline, followed up with a
--          repeat score in the month / in the last 4 weeks; episodes whose 10-14 week window closed in the
--          month, and how many of them responded (docs/outcomes.md; per episode: the CoCM operational
--          measures; the published measures per patient are rpt_outcome_measures)
-- grain: service_month, program, facility_id, care_manager_id
-- upstream: int_patient_months, int_outcome_episodes, fct_outcome_episodes, stg_assessments, ref_programs,
--           ref_settings, run_parameters
with params as (
    select as_of from run_parameters
),

settings as (
    select max(value) filter (where setting = 'outcome_follow_up_days')::integer as follow_up_days
    from ref_settings
),

-- active: a month with care-manager service in a measurement-based-care episode
active as (
    select
        m.patient_id,
        m.program,
        m.episode_number,
        m.service_month,
        m.facility_id,
        m.care_manager_id,
        least(last_day(m.service_month), p.as_of) as reference_day
    from int_patient_months as m
    inner join ref_programs as g using (program)
    cross join params as p
    where g.measurement_based_care and m.has_service
),

-- repeat scores of the episode's instrument after its baseline, per active month
follow_ups as (
    select
        a.patient_id,
        a.program,
        a.service_month,
        bool_or(date_trunc('month', s.assessment_date) = a.service_month) as in_month,
        bool_or(s.assessment_date > a.reference_day - t.follow_up_days) as in_last_weeks
    from active as a
    cross join settings as t
    inner join int_outcome_episodes as e using (patient_id, program, episode_number)
    inner join stg_assessments as s
        on s.patient_id = a.patient_id
        and s.instrument = e.instrument
        -- a repeat score: after the baseline (any score of an episode that began before the extracts)
        and s.assessment_date > coalesce(e.baseline_date, e.episode_start - 1)
        and s.assessment_date <= a.reference_day
    group by all
),

caseload as (
    select
        a.service_month,
        a.program,
        a.facility_id,
        a.care_manager_id,
        count(*) as active_patients,
        count(*) filter (
            where not e.started_before_data and (e.baseline_date is null or e.baseline_date > a.reference_day)
        ) as without_baseline,
        count(*) filter (where e.started_before_data) as baseline_before_data,
        count(*) filter (where f.in_month) as follow_up_in_month,
        count(*) filter (where f.in_last_weeks) as follow_up_last_4_weeks
    from active as a
    inner join int_outcome_episodes as e using (patient_id, program, episode_number)
    left join follow_ups as f using (patient_id, program, service_month)
    group by all
),

-- an episode's window outcome counts in the month it became known: the month of the window's last
-- score so far, else the month the window closed without one (pending windows are not counted)
closing as (
    select date_trunc('month', early_judged_on)::date as service_month, program, facility_id,
        care_manager_id, early_response as outcome, 'early' as judged_window
    from fct_outcome_episodes where early_response in ('response', 'no_response', 'no_score_in_window')
),

judged as (
    select
        service_month,
        program,
        facility_id,
        care_manager_id,
        count(*) filter (where judged_window = 'early') as early_judged,
        count(*) filter (where judged_window = 'early' and outcome = 'response') as early_responses
    from closing
    group by all
),

-- caseload and judged rows side by side (a union, so a missing care manager still groups)
final as (
    select
        service_month,
        program,
        facility_id,
        care_manager_id,
        sum(active_patients)::bigint as active_patients,
        sum(without_baseline)::bigint as without_baseline,
        sum(baseline_before_data)::bigint as baseline_before_data,
        sum(follow_up_in_month)::bigint as follow_up_in_month,
        sum(follow_up_last_4_weeks)::bigint as follow_up_last_4_weeks,
        sum(early_judged)::bigint as early_judged,
        sum(early_responses)::bigint as early_responses
    from (
        select *, 0 as early_judged, 0 as early_responses
        from caseload
        union all by name
        select *, 0 as active_patients, 0 as without_baseline, 0 as baseline_before_data, 0 as follow_up_in_month,
            0 as follow_up_last_4_weeks
        from judged
    )
    group by all
)

select * from final
