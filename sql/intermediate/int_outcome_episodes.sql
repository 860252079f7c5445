-- purpose: treatment episodes of the measurement-based-care programs (CoCM) as outcome units: the
--          episode's span, facility and care manager, its diagnosis (the enrollment of its first month)
--          and outcome instrument (the diagnosis group's instrument, ref_outcome_instruments, longest
--          code prefix; else the instrument of its first PHQ-9 / GAD-7 score) with the first score of
--          that instrument from outcome_index_lookback_days before the episode's index event (the
--          enrollment, or the start of a later episode) as the baseline, whatever the month boundary;
--          an episode with no score keeps a row (no baseline) so it is counted, not dropped;
--          an episode already under way when the extracts begin (episode_number 0 with service: its
--          initial month is not in the data) is kept as started_before_data, its baseline unknown
-- grain: patient_id, program, episode_number
-- upstream: int_patient_months, stg_enrollments, stg_assessments, ref_instruments, ref_outcome_instruments,
--           ref_programs, ref_settings, run_parameters
with months as (
    select m.*
    from int_patient_months as m
    inner join ref_programs as g using (program)
    where g.measurement_based_care
),

params as (
    select
        as_of,
        (select max(value) from ref_settings where setting = 'outcome_index_lookback_days')::integer
            as lookback_days
    from run_parameters
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
        arg_min(m.enrollment_id, m.service_month) as first_enrollment_id,
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

-- each enrollment's diagnosis group and its instrument (the longest matching code prefix)
enrollment_diagnoses as (
    select
        n.enrollment_id,
        n.enrolled_on,
        n.diagnosis_code,
        arg_max(d.diagnosis_group, length(d.code_prefix)) as diagnosis_group,
        arg_max(d.instrument, length(d.code_prefix)) as diagnosis_instrument
    from stg_enrollments as n
    left join ref_outcome_instruments as d on starts_with(upper(trim(n.diagnosis_code)), upper(d.code_prefix))
    group by all
),

-- the episode's diagnosis (its first month's enrollment) and its index event: the enrollment for the
-- enrollment's first episode, whatever month its service begins; the first day of a later episode
index_events as (
    select
        e.*,
        n.diagnosis_code,
        n.diagnosis_group,
        n.diagnosis_instrument,
        case
            when e.episode_number = min(e.episode_number) over (partition by e.first_enrollment_id)
                then n.enrolled_on
            else greatest(n.enrolled_on, e.episode_start)
        end as index_event_date
    from episodes as e
    left join enrollment_diagnoses as n on n.enrollment_id = e.first_enrollment_id
),

-- a baseline score may precede the index event by the look-back (outcome_index_lookback_days)
diagnosed as (
    select i.*, i.index_event_date - p.lookback_days as baseline_from
    from index_events as i
    cross join params as p
),

-- the episode's first outcome score from its baseline_from day: of the diagnosis's instrument, else of
-- any outcome instrument (ties on one day: the instrument name decides, never file order)
baselines as (
    select
        e.patient_id,
        e.program,
        e.episode_number,
        arg_min(s.instrument, (s.assessment_date, s.instrument)) as instrument,
        min(s.assessment_date) as baseline_date
    from diagnosed as e
    inner join outcome_scores as s
        on s.patient_id = e.patient_id
        and s.assessment_date between e.baseline_from and e.episode_end
        and s.instrument = coalesce(e.diagnosis_instrument, s.instrument)
    group by all
),

final as (
    select
        e.* exclude (last_enrollment_id, first_enrollment_id, diagnosis_instrument),
        -- why the episode's patient left (enrollments.discharge_reason), when it ended in a discharge
        case
            when e.discharged_on is not null then coalesce(n.discharge_reason, 'not recorded')
        end as discharge_reason,
        date_diff('day', e.episode_start, e.episode_end) + 1 as days_in_program,
        coalesce(e.diagnosis_instrument, b.instrument) as instrument,
        -- the first score of an episode that began before the extracts is not its baseline
        case when not e.started_before_data then b.baseline_date end as baseline_date,
        case when not e.started_before_data then s.score end as baseline_score,
        b.baseline_date as first_score_date,
        i.remission_below
    from diagnosed as e
    left join baselines as b using (patient_id, program, episode_number)
    left join outcome_scores as s
        on s.patient_id = b.patient_id and s.instrument = b.instrument and s.assessment_date = b.baseline_date
    left join ref_instruments as i on i.instrument = coalesce(e.diagnosis_instrument, b.instrument)
    left join stg_enrollments as n on n.enrollment_id = e.last_enrollment_id
)

select * from final
