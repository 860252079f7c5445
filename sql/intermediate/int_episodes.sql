-- purpose: episodes per patient and program: which months had service, the month type of the
--          episode (initial / subsequent), the episode number, initial months earlier in the year and
--          the care manager carried forward (window steps on narrow rows, so large histories fit in
--          memory). An episode belongs to the patient and program, not to an enrollment row: a new
--          enrollment row, a payer change or a re-delivery inside an episode does not start a new
--          one; an episode ends only by a documented discharge (a later month with service then starts
--          a new episode) or by the payer's episode_break_months months without service
-- grain: patient_id, program, service_month (every month from enrollment, or from the facility's
--        covered period (int_covered_periods), to discharge or the as-of month); a month covered by
--        two enrollments of the same program belongs to the later one, so it can never bill two base
--        codes
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: stg_enrollments, stg_enrollment_payers, int_covered_periods, int_patient_month_minutes,
--           stg_payers, ref_programs, run_parameters
with params as (
    select as_of, date_trunc('month', as_of)::date as open_month
    from run_parameters
),

enrollment_months as (
    select
        n.enrollment_id,
        n.patient_id,
        n.program,
        n.payer_id,
        n.enrolled_on,
        n.discharged_on,
        -- the extracts say nothing about months before the facility's covered period
        coalesce(c.covered_from, p.open_month) as coverage_start,
        n.enrolled_on < coalesce(c.covered_from, p.open_month) as enrolled_before_coverage,
        unnest(generate_series(
            greatest(date_trunc('month', n.enrolled_on), coalesce(c.covered_from, p.open_month)),
            date_trunc('month', least(coalesce(n.discharged_on, p.as_of), p.as_of)),
            interval 1 month
        ))::date as service_month
    from stg_enrollments as n
    cross join params as p
    left join int_covered_periods as c using (facility_id)
    where n.enrolled_on <= p.as_of
),

-- (enrolled_on is unique within a patient and program: the enrollments' ingest key)
owned as (
    select * exclude (enrolled_on) from enrollment_months
    qualify row_number() over (partition by patient_id, program, service_month order by enrolled_on desc) = 1
),

-- the payer of a month: the enrollment's coverage in force on the month's last day of service (the
-- month's last day, or the discharge day), else the enrollment's latest payer (payer_from is unique
-- within an enrollment: stg_enrollment_payers' grain)
month_payers as (
    select o.enrollment_id, o.service_month, arg_max(c.payer_id, c.payer_from) as payer_id
    from owned as o
    inner join stg_enrollment_payers as c
        on c.enrollment_id = o.enrollment_id
        and c.payer_from <= least(last_day(o.service_month), o.discharged_on)
    group by all
),

spine as (
    select o.* replace (coalesce(m.payer_id, o.payer_id) as payer_id)
    from owned as o
    left join month_payers as m using (enrollment_id, service_month)
),

narrow as (
    select
        s.enrollment_id,
        s.patient_id,
        s.program,
        s.service_month,
        s.payer_id,
        -- an episode is the patient's and program's: enrolled before the covered period under any row
        bool_or(s.enrolled_before_coverage) over (partition by s.patient_id, s.program) as enrolled_before_coverage,
        s.coverage_start,
        s.discharged_on,
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
        -- the discharge of the enrollment that owned the previous month with service (an episode
        -- ends with a documented discharge: goals met or referred on)
        last_value(case when has_service then coalesce(discharged_on, date '9999-12-31') end ignore nulls)
            over before_now as previous_service_discharged_on
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
                and date_diff('month', e.coverage_start, e.service_month) < e.episode_break_months then 'subsequent'
            when e.previous_service_month is null then 'initial'
            when date_diff('month', e.previous_service_month, e.service_month) - 1 >= e.episode_break_months
                then 'initial'
            -- the previous month with service belonged to an enrollment discharged before this month
            -- began: that episode ended, this month starts a new one (a discharge inside this month,
            -- or another enrollment row without a discharge, continues the episode)
            when e.previous_service_discharged_on < e.service_month then 'initial'
            else 'subsequent'
        end as episode_month_type
    from episodes as e
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
