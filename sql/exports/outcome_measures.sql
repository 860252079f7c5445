-- purpose: the published outcome measures per patient for the quality team (docs/outcomes.md): each
--          patient's index date and score, the measure's window, the most recent score in it, the
--          result and, when the patient is not judged or not met for want of a score, why
-- grain: patient, measure
-- upstream: fct_outcome_measures, ref_outcome_measures
select m.patient_id, m.measure, d.name as measure_name, d.version as source_version, m.program, m.facility_id,
       m.care_manager_id, strftime(m.index_date, '%Y-%m-%d') as index_date, m.index_score,
       strftime(m.window_from, '%Y-%m-%d') as window_from, strftime(m.window_to, '%Y-%m-%d') as window_to,
       m.window_closed, strftime(m.result_date, '%Y-%m-%d') as result_date, m.result_score, m.reduction,
       m.result, m.in_denominator, m.met, m.reason
from fct_outcome_measures as m
inner join ref_outcome_measures as d using (measure)
order by d.display_order, m.patient_id
