-- purpose: the published depression outcome measures (CMS159v14 remission at 12 months, CBE 1884
--          response at 6 months, HEDIS DRR-E follow-up / response / remission at 4-8 months) and the
--          project's GAD-7 analogues, per patient (docs/outcomes.md); each measure is a row of
--          ref_outcome_measures. A patient with an episode of the measure's diagnosis group has one
--          row per measure: the index (the first score of the measure's instrument above index_above,
--          from outcome_index_lookback_days before the episode's index event to the episode's end),
--          the window fixed from the index (anchor_months, then window_from_days .. window_to_days),
--          the most recent score in that window whatever happened to the enrollment, and the result;
--          exclusions (ref_outcome_exclusions) from the diagnoses of the patient's enrollments dated
--          up to the window's end. Hospice, palliative care, nursing home and death are not in the
--          extracts: not applied
-- grain: patient_id, measure
-- upstream: int_outcome_episodes, stg_assessments, stg_enrollments, ref_outcome_measures,
--           ref_outcome_exclusions, run_parameters
with params as (
    select as_of from run_parameters
),

measures as (
    select
        *,
        -- PHQ-9, GAD-7: how the page and the reasons name the instrument
        upper(regexp_replace(instrument, '^([a-z]+)([0-9]+)$', '\1-\2')) as instrument_label
    from ref_outcome_measures
),

-- the episodes of each measure's diagnosis group
candidates as (
    select
        m.measure,
        e.patient_id,
        e.program,
        e.facility_id,
        e.care_manager_id,
        e.episode_start,
        e.baseline_from,
        e.episode_end
    from int_outcome_episodes as e
    inner join measures as m on m.diagnosis_group = e.diagnosis_group
),

-- scores of the measure's instrument while the patient is in an episode of the group (from the
-- look-back before its index event); one score can fall in two episodes' spans: the earlier decides
in_care_scores as (
    select
        c.measure,
        c.patient_id,
        a.assessment_date,
        a.score,
        arg_min(
            { 'program': c.program, 'facility_id': c.facility_id, 'care_manager_id': c.care_manager_id },
            c.episode_start
        ) as episode
    from candidates as c
    inner join measures as m using (measure)
    inner join stg_assessments as a
        on a.patient_id = c.patient_id
        and a.instrument = m.instrument
        and a.assessment_date between c.baseline_from and c.episode_end
        and a.score is not null
    group by all
),

-- every candidate patient once, with the episode of the index (else of the first episode of the group)
patients as (
    select
        c.measure,
        c.patient_id,
        arg_min(
            { 'program': c.program, 'facility_id': c.facility_id, 'care_manager_id': c.care_manager_id },
            c.episode_start
        ) as first_episode
    from candidates as c
    group by all
),

-- the index: the first score above index_above (the window is fixed from it and does not start over);
-- and the first score of the instrument at all, to say why a patient has no index
indexes as (
    select
        s.measure,
        s.patient_id,
        min(s.assessment_date) filter (where s.score > m.index_above) as index_date,
        arg_min(s.score, s.assessment_date) filter (where s.score > m.index_above) as index_score,
        arg_min(s.episode, s.assessment_date) filter (where s.score > m.index_above) as index_episode,
        min(s.assessment_date) as first_score_date,
        arg_min(s.score, s.assessment_date) as first_score
    from in_care_scores as s
    inner join measures as m using (measure)
    group by all
),

windows as (
    select
        p.measure,
        p.patient_id,
        coalesce(i.index_episode, p.first_episode) as episode,
        i.index_date,
        i.index_score,
        i.first_score_date,
        i.first_score,
        ((i.index_date + to_months(m.anchor_months))::date + m.window_from_days)::date as window_from,
        ((i.index_date + to_months(m.anchor_months))::date + m.window_to_days)::date as window_to
    from patients as p
    inner join measures as m using (measure)
    left join indexes as i using (measure, patient_id)
),

-- the most recent score of the instrument in the window, inside or outside an episode
window_scores as (
    select
        w.measure,
        w.patient_id,
        max(a.assessment_date) as result_date,
        arg_max(a.score, a.assessment_date) as result_score
    from windows as w
    inner join measures as m using (measure)
    inner join stg_assessments as a
        on a.patient_id = w.patient_id
        and a.instrument = m.instrument
        and a.assessment_date between w.window_from and w.window_to
        and a.score is not null
    group by all
),

-- the measure's exclusions on any enrollment of the patient dated up to the window's end
exclusions as (
    select
        w.measure,
        w.patient_id,
        array_to_string(
            list_sort(list_distinct(list(x.condition || ' (' || upper(trim(n.diagnosis_code)) || ')'))), '; '
        ) as excluded_for
    from windows as w
    inner join measures as m using (measure)
    inner join ref_outcome_exclusions as x on x.exclusions = m.exclusions
    inner join stg_enrollments as n
        on n.patient_id = w.patient_id
        and n.enrolled_on <= w.window_to
        and starts_with(upper(trim(n.diagnosis_code)), upper(x.code_prefix))
    group by all
),

judged as (
    select
        w.*,
        m.instrument_label,
        m.result_kind,
        s.result_date,
        s.result_score,
        case when w.index_score > 0 then (w.index_score - s.result_score) / w.index_score end as reduction,
        x.excluded_for,
        w.window_to < p.as_of as window_closed,
        case
            when w.index_date is null then 'not_in_denominator'
            when x.excluded_for is not null then 'excluded'
            when s.result_date is null and w.window_to >= p.as_of then 'pending'
            when s.result_date is null then 'no_score_in_window'
            when m.result_kind = 'follow_up' then 'met'
            when m.result_kind = 'remission' and s.result_score < m.remission_below then 'met'
            when m.result_kind = 'response' and w.index_score > 0
                and (w.index_score - s.result_score) / w.index_score >= m.response_reduction then 'met'
            else 'not_met'
        end as result,
        m.index_above,
        p.as_of
    from windows as w
    cross join params as p
    inner join measures as m using (measure)
    left join window_scores as s using (measure, patient_id)
    left join exclusions as x using (measure, patient_id)
),

final as (
    select
        j.patient_id,
        j.measure,
        struct_extract(j.episode, 'program') as program,
        struct_extract(j.episode, 'facility_id') as facility_id,
        struct_extract(j.episode, 'care_manager_id') as care_manager_id,
        j.index_date,
        j.index_score,
        date_trunc('month', j.index_date)::date as index_month,
        j.window_from,
        j.window_to,
        j.window_closed,
        j.result_date,
        j.result_score,
        round(j.reduction, 4) as reduction,
        j.result,
        -- counted in the measure's denominator (N): judged, met or not (no score in a closed window
        -- is not met); pending windows, exclusions and patients without an index are not
        j.result in ('met', 'not_met', 'no_score_in_window') as in_denominator,
        j.result = 'met' as met,
        case j.result
            when 'not_in_denominator' then
                case
                    when j.first_score_date is null
                        then 'no ' || j.instrument_label || ' score while in care (from the look-back before enrollment)'
                    else 'no ' || j.instrument_label || ' score above ' || j.index_above || ' while in care (first: '
                        || regexp_replace(j.first_score::varchar, '\.0$', '') || ' on ' || strftime(j.first_score_date, '%Y-%m-%d') || ')'
                end
            when 'excluded' then 'excluded: ' || j.excluded_for || ' on an enrollment'
            when 'pending' then 'window open until ' || strftime(j.window_to, '%Y-%m-%d') || ', no '
                || j.instrument_label || ' in it yet'
            when 'no_score_in_window' then 'no ' || j.instrument_label || ' score in the window (not met)'
        end as reason
    from judged as j
)

select * from final
