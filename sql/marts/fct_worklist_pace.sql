-- purpose: the open-month worklist with a pace projection: minutes so far / days elapsed x days in
--          the month, compared with the next threshold ("on pace" / "behind pace"), the minutes per
--          remaining day still needed, and the worklist order (most dollars first) so a page can
--          show the top rows without reading the whole list
-- grain: enrollment_id (open month only)
-- upstream: fct_near_threshold
with worklist as (
    select
        *,
        day(last_day(service_month))::integer as days_in_month
    from fct_near_threshold
),

projected as (
    select
        *,
        days_in_month - days_left as days_elapsed,
        round(countable_minutes * days_in_month / (days_in_month - days_left))::integer as projected_minutes
    from worklist
),

final as (
    select
        facility_id,
        patient_id,
        payer_id,
        program,
        care_manager_id,
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
        row_number() over (
            order by dollars_gained desc nulls last, minutes_needed nulls last, days_left,
                facility_id, patient_id, program
        ) as worklist_rank,
        enrollment_id,
        service_month
    from projected
)

select * from final
order by worklist_rank
