-- purpose: the CoCM operational outcomes of every treatment episode (docs/outcomes.md): diagnosis,
--          baseline, latest score, response at 10-14 weeks and the treat-to-target flag "not improving
--          and no psychiatric consultant review since"; window edges and the response share are
--          settings rows (ref_settings outcome_*). Per episode; the published measures (per patient,
--          windows fixed from the index score) are fct_outcome_measures
-- grain: patient_id, program, episode_number
-- upstream: int_outcome_episodes, stg_assessments, stg_psych_reviews, ref_settings, run_parameters
with episodes as (
    select * from int_outcome_episodes
),

params as (
    select as_of from run_parameters
),

settings as (
    select
        max(value) filter (where setting = 'outcome_response_reduction')::double as response_reduction,
        max(value) filter (where setting = 'outcome_early_window_from_days')::integer as early_from,
        max(value) filter (where setting = 'outcome_early_window_to_days')::integer as early_to,
        max(value) filter (where setting = 'outcome_not_improving_days')::integer as not_improving_days
    from ref_settings
),

-- every score of the episode's instrument from its baseline on, with the day it was taken
-- (day 0 = the baseline) and its reduction from the baseline
scores as (
    select
        e.patient_id,
        e.program,
        e.episode_number,
        a.assessment_date,
        a.score,
        date_diff('day', e.baseline_date, a.assessment_date) as day,
        case when e.baseline_score > 0 then (e.baseline_score - a.score) / e.baseline_score end as reduction
    from episodes as e
    inner join stg_assessments as a
        on a.patient_id = e.patient_id
        and a.instrument = e.instrument
        and a.assessment_date between e.baseline_date and e.episode_end
),

-- the last score inside the window is the one judged (as the published measures judge the most recent score)
judged as (
    select
        s.patient_id,
        s.program,
        s.episode_number,
        count(*) filter (where s.day > 0) as follow_up_scores,
        arg_max(s.assessment_date, s.day) as latest_date,
        arg_max(s.score, s.day) as latest_score,
        arg_max(s.reduction, s.day) as latest_reduction,
        arg_max(s.reduction, s.day) filter (where s.day between t.early_from and t.early_to) as early_reduction,
        max(s.assessment_date) filter (where s.day between t.early_from and t.early_to) as early_score_date
    from scores as s
    cross join settings as t
    group by s.patient_id, s.program, s.episode_number
),

-- the latest psychiatric consultant review of the patient during the episode
reviews as (
    select e.patient_id, e.program, e.episode_number, max(r.review_date) as last_review_date
    from episodes as e
    inner join stg_psych_reviews as r
        on r.patient_id = e.patient_id
        and r.review_date between e.episode_start and e.episode_end
    group by all
),

final as (
    select
        e.patient_id,
        e.program,
        e.episode_number,
        e.facility_id,
        e.care_manager_id,
        e.episode_start,
        e.episode_end,
        e.discharged_on,
        e.discharge_reason,
        e.days_in_program,
        e.months_with_service,
        e.diagnosis_code,
        e.diagnosis_group,
        e.instrument,
        e.baseline_date,
        e.baseline_score,
        e.baseline_date is not null as has_baseline,
        -- under way when the extracts begin: counted for follow-up, never judged for response
        e.started_before_data,
        coalesce(j.follow_up_scores, 0) as follow_up_scores,
        j.latest_date,
        j.latest_score,
        round(j.latest_reduction, 4) as latest_reduction,
        e.baseline_date + t.early_to as early_window_closes,
        -- the day a window's outcome is known: its last score so far, else the day it closed empty
        case
            when j.early_score_date is not null then j.early_score_date
            when e.baseline_date + t.early_to < p.as_of then e.baseline_date + t.early_to
        end as early_judged_on,
        -- early response (10-14 weeks): response / no_response from the last score in the window;
        -- pending while the window is open without a score; no_score once it closed without one
        case
            when e.started_before_data then 'baseline_before_data'
            when e.baseline_date is null then 'no_baseline'
            when j.early_reduction is not null and j.early_reduction >= t.response_reduction then 'response'
            when j.early_reduction is not null then 'no_response'
            when e.baseline_date + t.early_to >= p.as_of then 'pending'
            else 'no_score_in_window'
        end as early_response,
        v.last_review_date,
        -- treat to target: in care at the as-of date, past the not-improving mark, latest score short
        -- of a response, and no psychiatric consultant review since the mark
        e.baseline_date is not null
        and e.episode_end >= p.as_of
        and date_diff('day', e.baseline_date, p.as_of) >= t.not_improving_days
        and coalesce(j.latest_reduction, 0) < t.response_reduction
        and coalesce(v.last_review_date < e.baseline_date + t.not_improving_days, true)
            as not_improving_without_review
    from episodes as e
    cross join settings as t
    cross join params as p
    left join judged as j using (patient_id, program, episode_number)
    left join reviews as v using (patient_id, program, episode_number)
)

select * from final
