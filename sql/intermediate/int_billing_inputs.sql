-- purpose: the minute totals the billing engine prices for each patient-month, as scenarios:
--          actual (countable minutes), if_consented (pre-consent minutes counted too),
--          next_target (the next minute total at which the month earns more: a base-code floor or
--          the next add-on unit below the payer's cap) and what_if (the actual minutes under the
--          other time reading, ref_rule_sets); in an APCM add-on month (int_apcm_months) a code that
--          bills nothing there (ref_apcm_add_ons row without an apcm_code, e.g. 99494) is no next target
-- grain: enrollment_id, service_month, scenario
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_patient_months, int_code_thresholds, ref_rule_sets, int_apcm_months, ref_apcm_add_ons
with months as (
    select * from int_patient_months
),

-- (month, code) pairs that earn nothing in the month because it is an APCM add-on month
apcm_dropped as (
    select a.enrollment_id, a.service_month, x.code, x.month_type
    from int_apcm_months as a
    inner join ref_apcm_add_ons as x
        on a.apcm_status = 'add_on'
        and x.apcm_code is null
        and a.service_month >= x.effective_from
        and (x.effective_to is null or a.service_month <= x.effective_to)
    inner join int_patient_months as m
        on m.enrollment_id = a.enrollment_id
        and m.service_month = a.service_month
        and m.payer_id = x.payer_id
        and x.month_type in (m.month_type, 'any')
),

thresholds as (
    select
        m.enrollment_id,
        m.service_month,
        case
            when r.kind = 'base' and r.min_minutes > m.countable_minutes then r.min_minutes
            when r.kind = 'add_on' and coalesce(m.max_add_on_units, 1) = 0 then null
            when r.kind = 'add_on' and m.countable_minutes < r.min_minutes then r.min_minutes
            -- next add-on unit: min + (units so far) * unit, unless the cap is reached
            when r.kind = 'add_on'
                and (m.max_add_on_units is null
                    or (m.countable_minutes - r.min_minutes) // r.unit_minutes + 1 < m.max_add_on_units)
                then r.min_minutes + ((m.countable_minutes - r.min_minutes) // r.unit_minutes + 1) * r.unit_minutes
        end as target_minutes
    from months as m
    -- the rows in force for the month, facility rows overriding the generic ones
    inner join int_code_thresholds as r
        on r.rule_set = m.rule_set
        and r.program = m.program
        and r.month_type = m.month_type
        and r.facility_type is not distinct from m.facility_type
        and r.service_month = m.service_month
    anti join apcm_dropped as d
        on d.enrollment_id = m.enrollment_id
        and d.service_month = m.service_month
        and d.code = r.code
),

next_targets as (
    select enrollment_id, service_month, min(target_minutes)::integer as minutes
    from thresholds
    group by all
    having min(target_minutes) is not null
),

scenarios as (
    select enrollment_id, service_month, 'actual' as scenario, countable_minutes as minutes from months
    union all
    select enrollment_id, service_month, 'if_consented', consentable_minutes from months
    union all
    select enrollment_id, service_month, 'next_target', minutes from next_targets
    union all
    select enrollment_id, service_month, 'what_if', countable_minutes from months
),

final as (
    select
        s.enrollment_id,
        s.service_month,
        s.scenario,
        s.minutes,
        m.payer_id,
        m.program,
        case when s.scenario = 'what_if' then w.what_if_rule_set else m.rule_set end as rule_set,
        m.month_type,
        m.facility_type,
        m.max_add_on_units
    from scenarios as s
    inner join months as m using (enrollment_id, service_month)
    left join ref_rule_sets as w on w.rule_set = m.rule_set
)

select * from final
