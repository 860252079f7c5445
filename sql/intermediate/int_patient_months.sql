-- purpose: one row per enrolled patient-month: minutes logged, countable and excluded, the episode
--          month type (initial / subsequent), the payer's rules in force and the CoCM gates
-- grain: patient_id, program, service_month (every month from enrollment, or from the first month
--        the extracts cover, to discharge or the as-of month); a month covered by two enrollments of
--        the same program belongs to the later one, so it can never bill two base codes
-- upstream: stg_enrollments, stg_time_entries, int_time_entries_classified, stg_psych_reviews, stg_payers, ref_programs,
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
        n.facility_id,
        n.billing_provider_id,
        n.enrolled_on,
        n.consent_on,
        n.discharged_on,
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
    select * from enrollment_months
    qualify row_number() over (partition by patient_id, program, service_month order by enrolled_on desc) = 1
),

entries as (
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
        sum(consentable_minutes - counted_minutes)::integer as before_consent_minutes
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
    select patient_id, program, service_month, arg_max(staff_id, staff_minutes) as care_manager_id
    from care_manager_minutes
    group by all
),

reviews as (
    select patient_id, review_month as service_month, count(*) as psych_reviews
    from stg_psych_reviews
    group by all
),

months as (
    select
        s.*,
        coalesce(m.logged_minutes, 0) as logged_minutes,
        coalesce(m.countable_minutes, 0) as countable_minutes,
        coalesce(m.consentable_minutes, 0) as consentable_minutes,
        coalesce(m.excluded_minutes, 0) as excluded_minutes,
        coalesce(m.before_consent_minutes, 0) as before_consent_minutes,
        -- a month "with service": care-manager activity that would count but for consent
        coalesce(m.consentable_minutes, 0) > 0 as has_service,
        coalesce(r.psych_reviews, 0) as psych_reviews,
        -- the month's care manager, else the last one seen for this enrollment
        last_value(c.care_manager_id ignore nulls) over (
            partition by s.patient_id, s.program order by s.service_month
            rows between unbounded preceding and current row
        ) as care_manager_id,
        p.rule_set,
        p.max_add_on_units,
        p.episode_break_months,
        p.date_of_service_policy,
        p.max_initial_months_per_year,
        p.measurement_based_care_gate,
        p.expected_denial_rate,
        p.patient_coinsurance_share,
        g.has_episodes,
        g.requires_consent,
        g.requires_psych_review
    from spine as s
    inner join ref_programs as g using (program)
    left join minutes as m using (patient_id, program, service_month)
    left join care_managers as c using (patient_id, program, service_month)
    left join reviews as r on r.patient_id = s.patient_id and r.service_month = s.service_month
    left join stg_payers as p
        on p.payer_id = s.payer_id
        and s.service_month >= p.effective_from
        and (p.effective_to is null or s.service_month <= p.effective_to)
),

episodes as (
    select
        *,
        last_value(case when has_service then service_month end ignore nulls) over (
            partition by patient_id, program order by service_month
            rows between unbounded preceding and 1 preceding
        ) as previous_service_month,
        last_value(case when has_service then enrollment_id end ignore nulls) over (
            partition by patient_id, program order by service_month
            rows between unbounded preceding and 1 preceding
        ) as previous_service_enrollment
    from months
),

typed as (
    select
        *,
        -- a new episode starts at the first month with service, or after episode_break_months
        -- consecutive calendar months without service (default 6); its first month is "initial"
        case
            when not has_episodes then 'any'
            -- enrolled before the extracts begin: the episode's first month is not in the data, so
            -- the conservative reading is a subsequent month (never bill 99492 twice)
            -- (unless the data itself shows episode_break_months empty months before this one)
            when previous_service_month is null and enrolled_before_coverage
                and date_diff('month', coverage_start, service_month) < episode_break_months then 'subsequent'
            when previous_service_month is null then 'initial'
            when date_diff('month', previous_service_month, service_month) - 1 >= episode_break_months
                then 'initial'
            -- a new enrollment (the previous episode was discharged) starts a new episode
            when previous_service_enrollment <> enrollment_id then 'initial'
            else 'subsequent'
        end as episode_month_type
    from episodes
    cross join (select coverage_start from params) as c
),

initials_in_year as (
    select
        *,
        coalesce(sum(case when has_service and episode_month_type = 'initial' then 1 else 0 end) over (
            partition by patient_id, program, year(service_month) order by service_month
            rows between unbounded preceding and 1 preceding
        ), 0) as earlier_initial_months_in_year
    from typed
),

final as (
    select
        t.*,
        -- payers that allow 99492 once per calendar year (max_initial_months_per_year) bill a later
        -- initial month of that year in the subsequent band
        case
            when t.episode_month_type = 'initial'
                and t.earlier_initial_months_in_year >= t.max_initial_months_per_year then 'subsequent'
            else t.episode_month_type
        end as month_type,
        sum(case when t.has_episodes and t.has_service and t.episode_month_type = 'initial' then 1 else 0 end)
            over (partition by t.patient_id, t.program order by t.service_month)::integer as episode_number,
        case when t.service_month = p.open_month then 'open' else 'closed' end as month_status,
        last_day(t.service_month) as month_end,
        case when t.service_month = p.open_month then date_diff('day', p.as_of, last_day(t.service_month))::integer else 0 end
            as days_left,
        -- consent documented on or before the month's last day
        not t.requires_consent or coalesce(t.consent_on <= last_day(t.service_month), false) as consent_ok,
        -- CoCM needs a documented psychiatric consultant review in the month
        not t.requires_psych_review or t.psych_reviews > 0 as psych_review_ok
    from initials_in_year as t
    cross join params as p
)

select * from final
