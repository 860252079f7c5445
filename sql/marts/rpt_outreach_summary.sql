-- purpose: the open month per care manager: dollars still reachable on the worklist (blocked or
--          not), the remaining capacity, and what following the outreach plan would bring in
--          (patients, minutes and expected revenue gained) versus the candidates left out
-- grain: care_manager_id (open month; null = patients without a care manager)
-- upstream: fct_near_threshold, fct_outreach_plan, fct_care_manager_capacity
with reachable as (
    select
        care_manager_id,
        count(*) filter (where dollars_gained > 0) as reachable_patient_programs,
        round(coalesce(sum(dollars_gained) filter (where dollars_gained > 0), 0), 2) as reachable_dollars,
        count(*) as patient_programs_enrolled
    from fct_near_threshold
    group by all
),

plan as (
    select
        care_manager_id,
        count(*) as candidates,
        sum(minutes_needed)::integer as candidate_minutes,
        round(sum(dollars_gained), 2) as candidate_dollars,
        count(*) filter (where in_plan) as planned_patients,
        coalesce(sum(minutes_needed) filter (where in_plan), 0)::integer as planned_minutes,
        round(coalesce(sum(dollars_gained) filter (where in_plan), 0), 2) as planned_dollars
    from fct_outreach_plan
    group by all
),

care_managers as (
    select care_manager_id from reachable
    union
    select care_manager_id from fct_care_manager_capacity
),

final as (
    select
        m.care_manager_id,
        k.care_manager_name,
        k.facility_id,
        coalesce(k.capacity_minutes, 0) as capacity_minutes,
        k.business_days_left,
        coalesce(r.patient_programs_enrolled, 0) as patient_programs_enrolled,
        coalesce(r.reachable_patient_programs, 0) as reachable_patient_programs,
        coalesce(r.reachable_dollars, 0) as reachable_dollars,
        coalesce(p.candidates, 0) as candidates,
        coalesce(p.candidate_minutes, 0) as candidate_minutes,
        coalesce(p.candidate_dollars, 0) as candidate_dollars,
        coalesce(p.planned_patients, 0) as planned_patients,
        coalesce(p.planned_minutes, 0) as planned_minutes,
        coalesce(p.planned_dollars, 0) as planned_dollars,
        coalesce(p.candidates, 0) - coalesce(p.planned_patients, 0) as unplanned_patients,
        round(coalesce(p.candidate_dollars, 0) - coalesce(p.planned_dollars, 0), 2) as unplanned_dollars,
        case
            when coalesce(k.capacity_minutes, 0) > 0
                then round(100.0 * coalesce(p.planned_minutes, 0) / k.capacity_minutes, 1)
        end as capacity_used_pct,
        -- ranks for the pages, which show the top care managers only (thousands at 10M entries)
        row_number() over (
            order by coalesce(r.reachable_dollars, 0) desc, m.care_manager_id nulls last
        ) as reachable_rank,
        row_number() over (
            order by coalesce(p.planned_dollars, 0) desc,
                coalesce(p.candidate_dollars, 0) - coalesce(p.planned_dollars, 0) desc, m.care_manager_id nulls last
        ) as plan_rank
    from care_managers as m
    left join fct_care_manager_capacity as k using (care_manager_id)
    left join reachable as r on r.care_manager_id is not distinct from m.care_manager_id
    left join plan as p on p.care_manager_id is not distinct from m.care_manager_id
)

select * from final
order by planned_dollars desc, reachable_dollars desc, care_manager_id nulls last
