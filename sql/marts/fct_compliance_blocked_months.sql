-- purpose: patient-months blocked by failed gates (consent, psychiatric review, initiating visit,
--          diagnosis, measurement where a payer makes it a gate; several are one reason),
--          per month and program, with the minutes and dollars held back (closed months: what the
--          revenue gap reports; open month: month to date)
-- grain: service_month, program, blocked_reason
-- upstream: fct_patient_months
with blocked as (
    select *
    from fct_patient_months
    where blocked_reason is not null and blocked_reason <> 'billed_under_other_program'
),

final as (
    select
        service_month,
        any_value(month_status) as month_status,
        program,
        blocked_reason,
        count(*) as patient_months,
        count(distinct patient_id) as patients,
        sum(logged_minutes)::bigint as logged_minutes,
        -- with consent, the minutes logged before it would count too (as in fct_revenue_gap)
        sum(case when blocked_reason like '%missing_consent%' then consentable_minutes else countable_minutes end)::bigint
            as minutes_held_back,
        round(sum(case when blocked_reason like '%missing_consent%' then if_consented_amount else current_amount end), 2)
            as dollars_held_back
    from blocked
    group by service_month, program, blocked_reason
)

select * from final
order by service_month, program, blocked_reason
