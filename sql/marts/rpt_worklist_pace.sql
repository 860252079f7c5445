-- purpose: the open-month worklist with a pace projection: minutes so far / days elapsed x days in
--          the month, compared with the next threshold ("on pace" / "behind pace"), the minutes per
--          remaining day still needed, and the worklist order (most dollars first) so a page can
--          show the top rows without reading the whole list, the care manager's name (staff extract)
--          and why a row is folded away on the page (fold_reason)
-- grain: enrollment_id (open month only)
-- upstream: fct_near_threshold, stg_staff
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

projected as (
    select
        *,
        days_in_month - days_left as days_elapsed,
        round(countable_minutes * days_in_month / (days_in_month - days_left))::integer as projected_minutes
    from worklist
    left join staff_names using (care_manager_id)
),

final as (
    select
        facility_id,
        patient_id,
        payer_id,
        program,
        care_manager_id,
        care_manager_name,
        month_type,
        countable_minutes,
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
        case
            when next_threshold_minutes is null then 'no next code'
            when projected_minutes >= next_threshold_minutes then 'on pace'
            else 'behind pace'
        end as pace_status,
        case
            when minutes_needed is null then null
            when days_left > 0 then round(minutes_needed / days_left, 1)
            else minutes_needed::double
        end as minutes_per_day_needed,
        -- folded away on the page (still listed): nothing more to earn this month, or no minutes yet
        case
            when coalesce(dollars_gained, 0) <= 0 then 'no next code to reach'
            when countable_minutes = 0 then 'no minutes yet this month'
        end as fold_reason,
        row_number() over (
            order by dollars_gained desc nulls last, minutes_needed nulls last, days_left,
                facility_id, patient_id, program, enrollment_id
        ) as worklist_rank,
        enrollment_id,
        service_month
    from projected
)

select * from final
order by worklist_rank
