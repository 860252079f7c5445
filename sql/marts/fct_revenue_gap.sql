-- purpose: revenue left on the table in closed months, one reason per patient-month so the dollars
--          add up: the failed gate(s) (several together are one reason, e.g.
--          'missing_consent + missing_psych_review'), else time logged before consent, else a near miss (ended
--          within near_miss_window_minutes of the next code); add-on minutes over the payer's cap
--          are reported as their own line
-- grain: enrollment_id, service_month, reason
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: fct_patient_months, ref_settings
with closed as (
    select * from fct_patient_months
    where month_status = 'closed'
),

window_setting as (
    select value::integer as near_miss_window_minutes
    from ref_settings
    where setting = 'near_miss_window_minutes'
),

gaps as (
    -- blocked by failed gates: what the month would bill with them met (with consent, the minutes
    -- logged before consent count too); several failed gates are one reason
    select *, blocked_reason as reason, consentable_minutes as minutes, if_consented_amount as dollars
    from closed
    where not consent_ok and if_consented_amount > 0
    union all
    select *, blocked_reason, countable_minutes, current_amount
    from closed
    where consent_ok and failed_gates <> '' and current_amount > 0
    union all
    select *, 'time_before_consent', before_consent_minutes, round(if_consented_amount - current_amount, 2)
    from closed
    where blocked_reason is null and if_consented_amount > current_amount
    union all
    select c.*, 'near_miss', c.minutes_needed, c.dollars_gained
    from closed as c
    cross join window_setting as w
    where c.blocked_reason is null
        and c.if_consented_amount <= c.current_amount
        and c.minutes_needed <= w.near_miss_window_minutes
        and c.dollars_gained > 0
    union all
    select *, 'over_add_on_cap', minutes_over_cap, amount_over_cap
    from closed
    where blocked_reason is null and units_over_cap > 0
),

final as (
    select
        facility_id,
        patient_id,
        payer_id,
        program,
        service_month,
        reason,
        minutes,
        dollars,
        countable_minutes,
        current_codes,
        care_manager_id,
        enrollment_id
    from gaps
)

select * from final
