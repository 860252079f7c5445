-- purpose: decide for every delivered time-entry version whether its minutes count toward a bundle,
--          and if not, the one reason why ("why are my minutes not counting?"); then never count
--          the same minute twice: minutes overlapping an earlier entry of the same staff member, or
--          an earlier countable entry for the same patient (one meeting logged by two people), are
--          excluded as overlap
-- grain: one row per delivered time-entry version (entry_id, delivery_seq, source_row)
-- incremental: entry (a nightly run reclassifies only the versions in scope_entries)
-- upstream: stg_time_entries, stg_enrollments, stg_staff, stg_payers, stg_encounters, ref_activities,
--           ref_roles, ref_encounter_codes, run_parameters
with entries as (
    select * from stg_time_entries
),

params as (
    select as_of from run_parameters
),

-- the enrollment (program episode owner) active on the service date; an entry that names its
-- program only matches that program's enrollment
-- (most patients have one enrollment: only the others need a choice, the latest enrollment wins)
enrollment_counts as (
    select patient_id, count(*) as enrollments, min(enrolled_on) as first_enrolled_on
    from stg_enrollments group by all
),

candidates as (
    select
        t.*,
        n.enrollment_id,
        n.program,
        n.payer_id,
        n.facility_id,
        n.consent_on,
        n.billing_provider_id,
        n.enrolled_on,
        c.first_enrolled_on,
        coalesce(c.enrollments, 0) > 1 as several_enrollments
    from entries as t
    left join enrollment_counts as c using (patient_id)
    left join stg_enrollments as n
        on n.patient_id = t.patient_id
        and t.service_date >= n.enrolled_on
        and (n.discharged_on is null or t.service_date <= n.discharged_on)
        and (t.entry_program is null or t.entry_program = n.program)
),

matched as (
    select * exclude (enrolled_on, several_enrollments) from candidates
    where not several_enrollments
    union all
    select * exclude (enrolled_on, several_enrollments) from candidates
    where several_enrollments
    qualify row_number() over (
        partition by entry_id, delivery_seq, source_row order by enrolled_on desc nulls last, program desc
    ) = 1
),

with_rules as (
    select
        m.*,
        s.role,
        a.exclusion_reason as activity_exclusion,
        a.counts as activity_counts,
        r.counts_when,
        p.rule_set,
        p.count_consultant_time,
        coalesce(c.separately_billed, false) as linked_encounter_billed,
        x.cpt_code as linked_cpt_code
    from matched as m
    left join stg_staff as s using (staff_id)
    left join ref_activities as a using (activity)
    left join ref_roles as r on r.role = s.role and r.program = m.program
    left join stg_payers as p
        on p.payer_id = m.payer_id
        and m.service_month >= p.effective_from
        and (p.effective_to is null or m.service_month <= p.effective_to)
    left join stg_encounters as x using (encounter_id)
    left join ref_encounter_codes as c on c.code = x.cpt_code
),

classified as (
    select
        *,
        -- first matching reason wins; the order is the audit story told to analysts
        case
            when version_rank > 1 then 'superseded_by_later_delivery'
            -- the source system voided the entry (its latest delivery says deleted)
            when is_deleted then 'voided_in_source'
            -- no enrollment covers the service date: never enrolled, before the first enrollment,
            -- or after a discharge / between enrollments
            when enrollment_id is null and first_enrolled_on is null then 'patient_not_enrolled'
            when enrollment_id is null and service_date < first_enrolled_on then 'service_before_enrollment'
            when enrollment_id is null then 'no_active_enrollment'
            when service_date > (select as_of from params) then 'after_as_of_date'
            when role is null then 'unknown_staff'
            when not activity_counts then activity_exclusion
            -- time documented as part of a separately billed encounter (psychotherapy, E/M ...)
            when linked_encounter_billed then 'linked_to_billed_encounter'
            -- psychiatric consultant minutes are paid inside the code unless the payer counts them
            when counts_when = 'payer_counts_consultant_time' and not coalesce(count_consultant_time, false)
                then 'consultant_time_not_counted_by_payer'
            -- a role whose minutes count only as the billing provider's own time (G0323: the clinician's
            -- own time): another staff member of that role does not count
            when counts_when = 'billing_provider_own_time' and staff_id is distinct from billing_provider_id
                then 'not_billing_providers_own_time'
            when counts_when is null
                or counts_when not in ('always', 'payer_counts_consultant_time', 'billing_provider_own_time')
                then 'non_counting_role'
            -- time before the consent date never counts
            when consent_on is null then 'no_consent_on_file'
            when service_date < consent_on then 'before_consent'
        end as exclusion_reason
    from with_rules
),

flagged as (
    select
        *,
        exclusion_reason is null as is_counted,
        exclusion_reason is null
        or exclusion_reason in ('no_consent_on_file', 'before_consent') as counts_if_consented,
        -- an interval only where both times are given and consistent
        case
            when version_rank = 1 and end_time > start_time then service_date + start_time
        end as starts_at,
        case
            when version_rank = 1 and end_time > start_time then service_date + end_time
        end as ends_at
    from classified
),

-- busy-until of the earlier entries (by start, then entry id) of the same staff member that day,
-- and of the earlier countable entries for the same patient and program that day; only entries with
-- a start and an end can overlap, and the windows read only the columns they need (narrow rows are
-- what keeps them fast at 10M entries)
timed as (
    select entry_id, delivery_seq, source_row, staff_id, patient_id, program, service_date, starts_at, ends_at,
           counts_if_consented
    from flagged
    where starts_at is not null
),

busy_until as (
    select
        entry_id, delivery_seq, source_row,
        max(ends_at) over (
            partition by staff_id, service_date
            order by starts_at, entry_id
            rows between unbounded preceding and 1 preceding
        ) as staff_busy_until,
        max(case when counts_if_consented then ends_at end) over (
            partition by patient_id, program, service_date
            order by starts_at, entry_id
            rows between unbounded preceding and 1 preceding
        ) as patient_busy_until
    from timed
),

busy as (
    select f.*, b.staff_busy_until, b.patient_busy_until
    from flagged as f
    left join busy_until as b using (entry_id, delivery_seq, source_row)
),

overlapped as (
    select
        *,
        -- least() skips NULLs in DuckDB: no earlier entry means no overlap
        case
            when staff_busy_until is not null
                then least(minutes, greatest(0, date_diff('minute', starts_at, least(ends_at, staff_busy_until))))
            else 0
        end as staff_overlap_minutes,
        case
            when counts_if_consented and patient_busy_until is not null
                then least(minutes, greatest(0, date_diff('minute', starts_at, least(ends_at, patient_busy_until))))
            else 0
        end as patient_overlap_minutes
    from busy
),

final as (
    select
        * exclude (staff_busy_until, patient_busy_until, staff_overlap_minutes, patient_overlap_minutes),
        -- the larger of the two overlaps, so one doubled minute is never taken off twice
        greatest(staff_overlap_minutes, patient_overlap_minutes) as overlap_minutes,
        case
            when greatest(staff_overlap_minutes, patient_overlap_minutes) = 0 then null
            when staff_overlap_minutes >= patient_overlap_minutes then 'overlapping_time_same_staff'
            else 'same_meeting_logged_twice'
        end as overlap_reason,
        case
            when is_counted then minutes - greatest(staff_overlap_minutes, patient_overlap_minutes)
            else 0
        end as counted_minutes,
        case
            when counts_if_consented then minutes - greatest(staff_overlap_minutes, patient_overlap_minutes)
            else 0
        end as consentable_minutes
    from overlapped
)

select * from final
