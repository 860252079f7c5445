-- purpose: episodes per patient and program: which months had service, the month type of the
--          episode (initial / subsequent), the episode number, initial months earlier in the year and
--          the care manager carried forward (window steps on narrow rows, so large histories fit in
--          memory)
-- grain: patient_id, program, service_month (every month from enrollment, or from the first month
--        the extracts cover, to discharge or the as-of month); a month covered by two enrollments of
--        the same program belongs to the later one, so it can never bill two base codes
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: stg_enrollments, stg_time_entries, int_patient_month_minutes, stg_payers, ref_programs,
--           run_parameters
with params as (
    select
        as_of,
        date_trunc('month', as_of)::date as open_month,
        -- the extracts say nothing about months before their first time entry
        coalesce(
            (select min(service_month) from stg_time_entries where version_rank = 1),
            date_trunc('month', as_of)::date
        ) as coverage_start
    from run_parameters
),

enrollment_months as (
    select
        n.enrollment_id,
        n.patient_id,
        n.program,
        n.payer_id,
        n.enrolled_on,
        n.enrolled_on < p.coverage_start as enrolled_before_coverage,
        unnest(generate_series(
            greatest(date_trunc('month', n.enrolled_on), p.coverage_start),
            date_trunc('month', least(coalesce(n.discharged_on, p.as_of), p.as_of)),
            interval 1 month
        ))::date as service_month
    from stg_enrollments as n
    cross join params as p
    where n.enrolled_on <= p.as_of
),

spine as (
    select * exclude (enrolled_on) from enrollment_months
    qualify row_number() over (partition by patient_id, program, service_month order by enrolled_on desc) = 1
),

narrow as (
    select
        s.enrollment_id,
        s.patient_id,
        s.program,
        s.service_month,
        s.enrolled_before_coverage,
        -- a month "with service": care-manager activity that would count but for consent
        coalesce(m.consentable_minutes, 0) > 0 as has_service,
        m.care_manager_id as month_care_manager_id,
        g.has_episodes,
        p.episode_break_months,
        p.max_initial_months_per_year
    from spine as s
    inner join ref_programs as g using (program)
    left join int_patient_month_minutes as m using (patient_id, program, service_month)
    left join stg_payers as p
        on p.payer_id = s.payer_id
        and s.service_month >= p.effective_from
        and (p.effective_to is null or s.service_month <= p.effective_to)
),

episodes as (
    select
        *,
        -- the month's care manager, else the last one seen for this patient and program
        last_value(month_care_manager_id ignore nulls) over to_now as care_manager_id,
        last_value(case when has_service then service_month end ignore nulls) over before_now
            as previous_service_month,
        last_value(case when has_service then enrollment_id end ignore nulls) over before_now
            as previous_service_enrollment
    from narrow
    window
        to_now as (partition by patient_id, program order by service_month
            rows between unbounded preceding and current row),
        before_now as (partition by patient_id, program order by service_month
            rows between unbounded preceding and 1 preceding)
),

typed as (
    select
        e.*,
        -- a new episode starts at the first month with service, or after episode_break_months
        -- consecutive calendar months without service (default 6); its first month is "initial"
        case
            when not e.has_episodes then 'any'
            -- enrolled before the extracts begin: the episode's first month is not in the data, so
            -- the conservative reading is a subsequent month (never bill 99492 twice)
            -- (unless the data itself shows episode_break_months empty months before this one)
            when e.previous_service_month is null and e.enrolled_before_coverage
                and date_diff('month', p.coverage_start, e.service_month) < e.episode_break_months then 'subsequent'
            when e.previous_service_month is null then 'initial'
            when date_diff('month', e.previous_service_month, e.service_month) - 1 >= e.episode_break_months
                then 'initial'
            -- a new enrollment (the previous episode was discharged) starts a new episode
            when e.previous_service_enrollment <> e.enrollment_id then 'initial'
            else 'subsequent'
        end as episode_month_type
    from episodes as e
    cross join params as p
),

counted as (
    select
        *,
        coalesce(sum(case when has_service and episode_month_type = 'initial' then 1 else 0 end) over (
            partition by patient_id, program, year(service_month) order by service_month
            rows between unbounded preceding and 1 preceding
        ), 0) as earlier_initial_months_in_year,
        sum(case when has_episodes and has_service and episode_month_type = 'initial' then 1 else 0 end)
            over (partition by patient_id, program order by service_month)::integer as episode_number
    from typed
)

select * from counted
