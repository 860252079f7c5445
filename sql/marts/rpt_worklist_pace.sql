-- purpose: the open-month worklist of every enrolled patient-program with a state a care manager acts
--          on (blocked by consent / psychiatric review / visit ..., not started, behind pace, on pace,
--          at the highest code), the pace projection (minutes so far / days elapsed x days in the
--          month, against the next threshold), the minutes logged and excluded with the reasons, the
--          patient's, payer's and care manager's names, and the worklist order: state first (what to
--          do first), then dollars, so a page can show the top rows without reading the whole list
-- grain: enrollment_id (open month only)
-- upstream: fct_near_threshold, stg_staff, int_time_entries_classified, dim_patient_labels, dim_payer_names
with worklist as (
    select
        *,
        day(last_day(service_month))::integer as days_in_month
    from fct_near_threshold
),

staff_names as (
    select staff_id as care_manager_id, any_value(name) as care_manager_name
    from stg_staff
    group by all
),

open_entries as (
    -- the entries of the worklist's patient-months, as int_patient_month_minutes counts them
    select
        patient_id,
        program,
        service_month,
        minutes,
        minutes - counted_minutes as excluded,
        replace(coalesce(exclusion_reason, overlap_reason, 'other'), '_', ' ') as reason
    from int_time_entries_classified
    where
        enrollment_id is not null and version_rank = 1
        and exclusion_reason is distinct from 'after_as_of_date'
        and service_month in (select distinct service_month from fct_near_threshold)
),

by_reason as (
    select patient_id, program, service_month, reason, sum(excluded)::integer as excluded
    from open_entries
    where excluded > 0
    group by all
),

exclusions as (
    select
        patient_id,
        program,
        service_month,
        string_agg(excluded || ' ' || reason, '; ' order by excluded desc, reason) as excluded_reasons
    from by_reason
    group by all
),

logged as (
    select
        patient_id,
        program,
        service_month,
        sum(minutes)::integer as logged_minutes,
        sum(excluded)::integer as excluded_minutes
    from open_entries
    group by all
),

projected as (
    select
        w.*,
        s.care_manager_name,
        p.patient_label,
        n.payer_name,
        coalesce(l.logged_minutes, 0) as logged_minutes,
        coalesce(l.excluded_minutes, 0) as excluded_minutes,
        e.excluded_reasons,
        w.days_in_month - w.days_left as days_elapsed,
        round(w.countable_minutes * w.days_in_month / (w.days_in_month - w.days_left))::integer as projected_minutes,
        -- "missing consent; no psychiatric review yet" -> "consent, psychiatric review"
        replace(replace(replace(replace(replace(replace(w.blockers,
            'missing consent', 'consent'), 'no psychiatric review yet', 'psychiatric review'),
            'no initiating visit', 'initiating visit'), 'no behavioral health diagnosis', 'diagnosis'),
            'no validated rating scale', 'rating scale'), '; ', ', ') as blocked_by
    from worklist as w
    left join staff_names as s on w.care_manager_id = s.care_manager_id
    left join dim_patient_labels as p on w.patient_id = p.patient_id
    left join dim_payer_names as n on w.payer_id = n.payer_id
    left join logged as l
        on w.patient_id = l.patient_id and w.program = l.program and w.service_month = l.service_month
    left join exclusions as e
        on w.patient_id = e.patient_id and w.program = e.program and w.service_month = e.service_month
),

states as (
    select
        *,
        case
            when next_threshold_minutes is null then 'no next code'
            when projected_minutes >= next_threshold_minutes then 'on pace'
            else 'behind pace'
        end as pace_status,
        -- what a care manager does first: clear a blocker, start a patient not seen yet this month,
        -- catch up a patient behind pace; then the ones on pace and the ones with nothing more to earn
        case
            when coalesce(blocked_by, '') <> '' then 1
            when next_threshold_minutes is null then 5
            when countable_minutes = 0 then 2
            when projected_minutes < next_threshold_minutes then 3
            else 4
        end as state_order
    from projected
),

final as (
    select
        facility_id,
        patient_id,
        patient_label,
        payer_id,
        coalesce(payer_name, payer_id) as payer_name,
        program,
        care_manager_id,
        care_manager_name,
        month_type,
        countable_minutes,
        logged_minutes,
        excluded_minutes,
        excluded_reasons,
        current_codes,
        current_amount,
        next_code,
        next_threshold_minutes,
        minutes_needed,
        days_left,
        dollars_gained,
        blockers,
        days_in_month,
        days_elapsed,
        projected_minutes,
        pace_status,
        case
            when minutes_needed is null then null
            when days_left > 0 then round(minutes_needed / days_left, 1)
            else minutes_needed::double
        end as minutes_per_day_needed,
        state_order,
        case state_order
            when 1 then 'blocked by ' || blocked_by
            when 2 then 'not started'
            when 3 then 'behind pace'
            when 4 then 'on pace'
            else 'at the highest code'
        end as state,
        row_number() over (
            order by state_order, dollars_gained desc nulls last, minutes_needed nulls last, days_left,
                facility_id, patient_id, program, enrollment_id
        ) as worklist_rank,
        enrollment_id,
        service_month
    from states
)

select * from final
order by worklist_rank
