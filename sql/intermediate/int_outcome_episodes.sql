-- purpose: treatment episodes of the measurement-based-care programs (CoCM) as outcome units: the
--          episode's span, facility and care manager, and its outcome instrument (the instrument of
--          its first PHQ-9 / GAD-7 score: ref_instruments.outcome_measure) with that first score as
--          the baseline; an episode with no score keeps a row (no baseline) so it is counted, not dropped;
--          an episode already under way when the extracts begin (episode_number 0 with service: its
--          initial month is not in the data) is kept as started_before_data, its baseline unknown
-- grain: patient_id, program, episode_number
-- upstream: int_patient_months, stg_enrollments, stg_assessments, ref_instruments, ref_programs, run_parameters
with months as (
    select m.*
    from int_patient_months as m
    inner join ref_programs as g using (program)
    where g.measurement_based_care
),

params as (
    select as_of from run_parameters
),

-- an episode runs from the first day of its initial month to the end of its last enrolled month
-- (the discharge day or the as-of date when earlier); arg_max orders by service_month, which is unique
-- within a patient and program (int_patient_months' grain): no tie
episodes as (
    select
        m.patient_id,
        m.program,
        m.episode_number,
        min(m.service_month) as episode_start,
        least(
            last_day(max(m.service_month)),
            coalesce(arg_max(m.discharged_on, m.service_month), p.as_of),
            p.as_of
        ) as episode_end,
        arg_max(m.discharged_on, m.service_month) as discharged_on,
        arg_max(m.enrollment_id, m.service_month) as last_enrollment_id,
        arg_max(m.facility_id, m.service_month) as facility_id,
        arg_max(m.care_manager_id, m.service_month) as care_manager_id,
        count(*) filter (where m.has_service) as months_with_service,
        m.episode_number = 0 as started_before_data
    from months as m
    cross join params as p
    group by m.patient_id, m.program, m.episode_number, p.as_of
    -- months before a new patient's first service (episode 0 without service) are no episode
    having count(*) filter (where m.has_service) > 0 or m.episode_number > 0
),

outcome_scores as (
    select a.patient_id, a.assessment_date, a.instrument, a.score
    from stg_assessments as a
    inner join ref_instruments as i using (instrument)
    where i.outcome_measure and a.score is not null
),

-- the episode's first outcome score (ties on one day: the instrument name decides, never file order)
baselines as (
    select
        e.patient_id,
        e.program,
        e.episode_number,
        arg_min(s.instrument, (s.assessment_date, s.instrument)) as instrument,
        min(s.assessment_date) as baseline_date
    from episodes as e
    inner join outcome_scores as s
        on s.patient_id = e.patient_id
        and s.assessment_date between e.episode_start and e.episode_end
    group by all
),

final as (
    select
        e.* exclude (last_enrollment_id),
        -- why the episode's patient left (enrollments.discharge_reason), when it ended in a discharge
        case
            when e.discharged_on is not null then coalesce(n.discharge_reason, 'not recorded')
        end as discharge_reason,
        date_diff('day', e.episode_start, e.episode_end) + 1 as days_in_program,
        b.instrument,
        -- the first score of an episode that began before the extracts is not its baseline
        case when not e.started_before_data then b.baseline_date end as baseline_date,
        case when not e.started_before_data then s.score end as baseline_score,
        b.baseline_date as first_score_date,
        i.remission_below
    from episodes as e
    left join baselines as b using (patient_id, program, episode_number)
    left join outcome_scores as s
        on s.patient_id = b.patient_id and s.instrument = b.instrument and s.assessment_date = b.baseline_date
    left join ref_instruments as i on i.instrument = b.instrument
    left join stg_enrollments as n on n.enrollment_id = e.last_enrollment_id
)

select * from final
