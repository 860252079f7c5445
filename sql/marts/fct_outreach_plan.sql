-- purpose: the open month's outreach plan: per care manager, the patients to contact first, ranked
--          by dollars gained per care-manager minute still needed, taken in rank order while the
--          running sum of minutes needed fits the care manager's remaining capacity (greedy; a
--          patient whose minutes would overrun the capacity left is not in the plan, nor is anyone
--          ranked after it); candidates have minutes needed > 0, dollars gained > 0 and no blockers;
--          a patient in two programs appears once, with the program that pays more per minute
-- grain: patient_id (open month)
-- upstream: fct_near_threshold, fct_care_manager_capacity
with candidates as (
    select
        facility_id,
        care_manager_id,
        patient_id,
        payer_id,
        program,
        countable_minutes,
        next_code,
        next_threshold_minutes,
        minutes_needed,
        dollars_gained,
        days_left,
        service_month,
        dollars_gained / minutes_needed as ratio
    from fct_near_threshold
    where minutes_needed > 0 and dollars_gained > 0 and coalesce(blockers, '') = ''
    qualify row_number() over (
        partition by patient_id order by dollars_gained / minutes_needed desc, dollars_gained desc, program
    ) = 1
),

ranked as (
    select
        c.*,
        coalesce(k.capacity_minutes, 0) as capacity_minutes,
        row_number() over plan_order as rank,
        sum(c.minutes_needed) over (plan_order rows between unbounded preceding and current row)::integer
            as cumulative_minutes
    from candidates as c
    left join fct_care_manager_capacity as k using (care_manager_id)
    window plan_order as (
        partition by c.care_manager_id
        order by c.ratio desc, c.dollars_gained desc, c.minutes_needed, c.patient_id, c.program
    )
),

final as (
    select
        care_manager_id,
        patient_id,
        payer_id,
        program,
        minutes_needed,
        dollars_gained,
        round(ratio, 4) as dollars_per_minute,
        rank,
        cumulative_minutes,
        capacity_minutes,
        cumulative_minutes <= capacity_minutes as in_plan,
        facility_id,
        countable_minutes,
        next_code,
        next_threshold_minutes,
        days_left,
        service_month
    from ranked
)

select * from final
order by care_manager_id nulls last, rank
