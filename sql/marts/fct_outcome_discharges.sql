-- purpose: how and when patients left the collaborative care episodes (docs/outcomes.md): discharged
--          episodes by discharge reason (enrollments.discharge_reason; 'not recorded' when empty), with
--          time in program and the share that responded at 10-14 weeks (per episode); one
--          row per reason and a total row (is_total); no patient identifiers
-- grain: discharge_reason (is_total = false), one row with is_total = true and discharge_reason null
-- upstream: fct_outcome_episodes
with discharged as (
    select * from fct_outcome_episodes
    where discharge_reason is not null
),

counts as (
    select
        discharge_reason,
        grouping(discharge_reason) = 1 as is_total,
        count(*) as episodes,
        median(days_in_program)::integer as median_days_in_program,
        count(*) filter (where early_response = 'response') as early_responses,
        count(*) filter (where early_response in ('response', 'no_response', 'no_score_in_window')) as early_judged
    from discharged
    group by grouping sets ((discharge_reason), ())
),

final as (
    select
        *,
        round(early_responses / nullif(early_judged, 0), 4) as early_response_rate
    from counts
)

select * from final
