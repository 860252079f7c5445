-- purpose: minutes per patient-month from the classified entries: logged, countable, if consented,
--          excluded, before consent; and the care manager with the most minutes in the month
-- grain: patient_id, program, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_time_entries_classified
with entries as (
    select * from int_time_entries_classified
    where enrollment_id is not null and version_rank = 1 and exclusion_reason is distinct from 'after_as_of_date'
),

minutes as (
    select
        patient_id,
        program,
        service_month,
        sum(minutes)::integer as logged_minutes,
        sum(counted_minutes)::integer as countable_minutes,
        sum(consentable_minutes)::integer as consentable_minutes,
        sum(minutes - counted_minutes)::integer as excluded_minutes,
        sum(consentable_minutes - counted_minutes)::integer as before_consent_minutes
    from entries
    group by all
),

care_manager_minutes as (
    select patient_id, program, service_month, staff_id, sum(minutes) as staff_minutes
    from entries
    where role = 'care_manager'
    group by all
),

care_managers as (
    select patient_id, program, service_month, arg_max(staff_id, staff_minutes) as care_manager_id
    from care_manager_minutes
    group by all
),

final as (
    select m.*, c.care_manager_id
    from minutes as m
    left join care_managers as c using (patient_id, program, service_month)
)

select * from final
