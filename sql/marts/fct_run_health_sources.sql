-- purpose: how fresh each source is, per facility: the newest service date of the time entries,
--          encounters, psychiatric reviews and rating scales (live rows, not after the as-of date), the
--          days between it and the as-of date and whether that is more than stale_extract_days
--          (settings); a facility is the staff member's (entries, encounters, reviews) or the
--          patient's enrollment facility (rating scales)
-- grain: source_table, facility_id
-- upstream: stg_time_entries, stg_encounters, stg_psych_reviews, stg_assessments, stg_staff, stg_enrollments, run_parameters, ref_settings
with params as (
    select
        r.as_of,
        (select max(try_cast(value as integer)) from ref_settings where setting = 'stale_extract_days') as stale_days
    from run_parameters as r
),

staff as (
    select staff_id, any_value(facility_id) as facility_id from stg_staff group by all
),

patients as (
    select patient_id, min(facility_id) as facility_id from stg_enrollments group by all
),

dated as (
    select 'time_entries' as source_table, s.facility_id, t.service_date as day
    from stg_time_entries as t left join staff as s using (staff_id)
    where t.version_rank = 1
    union all
    select 'encounters', s.facility_id, e.encounter_date
    from stg_encounters as e left join staff as s on s.staff_id = e.provider_id
    union all
    select 'psych_reviews', s.facility_id, r.review_date
    from stg_psych_reviews as r left join staff as s on s.staff_id = r.consultant_id
    union all
    select 'assessments', p.facility_id, a.assessment_date
    from stg_assessments as a left join patients as p using (patient_id)
),

final as (
    select
        d.source_table,
        d.facility_id,
        count(*) as rows,
        max(d.day) as newest_date,
        (p.as_of - max(d.day))::integer as days_before_as_of,
        p.stale_days as stale_extract_days,
        -- only the time entries flow daily; visits, reviews and rating scales are events
        d.source_table = 'time_entries' and (p.as_of - max(d.day)) > p.stale_days as is_stale
    from dated as d
    cross join params as p
    where d.day <= p.as_of
    group by d.source_table, d.facility_id, p.as_of, p.stale_days
)

select * from final
order by source_table, facility_id nulls last
