-- purpose: minutes per patient-month from the classified entries: logged, countable, if consented,
--          excluded, before consent; the care manager with the most minutes in the month; and the
--          psychiatric consultant's own case_review entries (documentation of the consultant review,
--          billing-rules.md section 4, whether or not the payer counts their minutes)
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
        sum(consentable_minutes - counted_minutes)::integer as before_consent_minutes,
        -- a voided entry or one outside the covered period documents nothing
        count(*) filter (
            where role = 'psychiatric_consultant' and activity = 'case_review' and not is_deleted
                and exclusion_reason is distinct from 'before_covered_period'
        )::integer as consultant_case_reviews,
        string_agg(entry_id || ' on ' || strftime(service_date, '%Y-%m-%d'), ', ' order by service_date, entry_id)
            filter (
                where role = 'psychiatric_consultant' and activity = 'case_review' and not is_deleted
                    and exclusion_reason is distinct from 'before_covered_period'
            ) as consultant_case_review_entries
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
    -- the care manager with the most minutes in the patient-month; a tie goes to the lowest staff_id
    -- (arg_max alone picked either, by row order: worklists and revenue gap changed between runs)
    select patient_id, program, service_month, staff_id as care_manager_id
    from care_manager_minutes
    qualify row_number() over (
        partition by patient_id, program, service_month order by staff_minutes desc, staff_id
    ) = 1
),

final as (
    select m.*, c.care_manager_id
    from minutes as m
    left join care_managers as c using (patient_id, program, service_month)
)

select * from final
