-- purpose: the evidence trail behind every patient-month (billed, unbilled or blocked): the outcome,
--          each gate with pass or fail, the threshold row each code was earned under, and every
--          time entry with its status and reason; `bhi explain` reads it
-- grain: patient_id, service_month, program, section, item (section: outcome | gate | threshold | scrub | entry)
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
--          and, in a month with an APCM base code, why the APCM add-on was or was not billed
--          and every claim scrub edit a claim line of the month fails (section scrub: held from the 837P)
-- upstream: fct_patient_months, int_billing_codes, int_time_entries_classified, stg_staff, int_apcm_months,
--           fct_claim_scrub_findings
with months as (
    select * from fct_patient_months
),

outcomes as (
    select
        patient_id, service_month, program, 'outcome' as section, 'codes' as item,
        case
            when blocked_reason is not null then 'blocked'
            when current_codes = '' then 'nothing billable'
            else 'billed'
        end as status,
        countable_minutes as minutes,
        concat_ws('; ',
            month_status || ' ' || month_type || ' month, rule set ' || rule_set
                || coalesce(', facility type ' || facility_type, ''),
            case when current_codes <> '' then current_codes || ' = $' || printf('%.2f', current_amount) end,
            case when blocked_reason is not null then 'blocked: ' || blocked_reason end,
            case when warnings <> '' then 'warnings: ' || warnings end
        ) as detail,
        0 as sort_order
    from months
),

gates as (
    select patient_id, service_month, program, 'gate', 'consent',
        case when consent_ok then 'pass' else 'fail' end, null::integer,
        coalesce('consent on ' || strftime(consent_on, '%Y-%m-%d'), 'no consent on file'), 1
    from months
    union all
    select patient_id, service_month, program, 'gate', 'psychiatric_review',
        case when psych_review_ok then 'pass' else 'fail' end, null,
        psych_reviews || ' documented review(s) in the month'
            || case when psych_review_evidence <> '' then ': ' || psych_review_evidence else '' end, 2
    from months
    union all
    select patient_id, service_month, program, 'gate', 'initiating_visit',
        case when initiating_visit_ok then 'pass' else 'fail' end, null,
        coalesce('visit on ' || strftime(initiating_visit_on, '%Y-%m-%d'), 'no E/M, AWV or IPPE by the billing practitioner in the look-back'), 3
    from months
    union all
    select patient_id, service_month, program, 'gate', 'behavioral_health_diagnosis',
        case when diagnosis_ok then 'pass' else 'fail' end, null,
        'diagnosis on the enrollment: ' || coalesce(diagnosis_code, 'none'), 4
    from months
    union all
    select patient_id, service_month, program, 'gate', 'measurement_based_care',
        case when measurement_ok then 'pass' when measurement_is_gate then 'fail' else 'warning' end, null,
        case when measurement_ok then 'validated scale on file' else 'no validated rating scale in the initial month and the look-back' end, 4
    from months
    union all
    select m.patient_id, m.service_month, m.program, 'gate', 'apcm',
        case a.apcm_status when 'add_on' then 'add-on' else 'standalone' end, null,
        'APCM base ' || a.apcm_code || ' billed by ' || a.apcm_provider_id || case a.apcm_status
            when 'add_on' then ' (the billing practitioner): the standalone codes are billed as the APCM'
                || ' behavioral-health add-ons G0568 / G0569 / G0570 (apcm_add_ons.csv)'
            when 'other_practitioner' then ', not the billing practitioner ' || m.billing_provider_id
                || ': an add-on needs the base by the same practitioner, so the standalone codes stay'
            else ': the payer has no APCM add-on rows in force (apcm_add_ons.csv), so the standalone codes stay'
        end, 4
    from months as m
    inner join int_apcm_months as a using (enrollment_id, service_month)
),

thresholds as (
    select
        m.patient_id, m.service_month, m.program, 'threshold', c.code,
        case when c.units_over_cap > 0 then 'capped' else 'earned' end,
        c.minutes,
        c.rule_set || ' ' || c.month_type || ' ' || c.code || ' ' || c.kind || ': from ' || c.min_minutes || ' min'
            || coalesce(' to ' || c.max_minutes || ' min', '')
            || coalesce(', one unit per ' || c.unit_minutes || ' min', '')
            || '; ' || c.units || ' unit(s)'
            || case when c.units_over_cap > 0 then ', ' || c.units_over_cap || ' over the payer cap' else '' end
            || case when c.code <> c.standalone_code then '; ' || c.standalone_code || ' earned, billed as the APCM add-on '
                || c.code || ' (base ' || c.apcm_base_code || ' by the same practitioner)' else '' end,
        5
    from months as m
    inner join int_billing_codes as c using (enrollment_id, service_month)
    where c.scenario = 'actual'
),

scrub as (
    select
        patient_id, service_month, program, 'scrub', code || ' ' || edit || coalesce(' ' || nullif(other_code, ''), ''),
        'held', units, detail || '; the claim is held back from the 837P (scrub_findings.csv)', 6
    from fct_claim_scrub_findings
),

entries as (
    select
        e.patient_id, e.service_month, coalesce(e.program, e.entry_program), 'entry', e.entry_id,
        case
            when e.exclusion_reason is not null then 'excluded'
            when e.overlap_minutes > 0 and e.counted_minutes = 0 then 'excluded'
            when e.overlap_minutes > 0 then 'partly counted'
            else 'counted'
        end,
        e.minutes,
        strftime(e.service_date, '%Y-%m-%d')
            || coalesce(' ' || strftime(e.starts_at, '%H:%M') || '-' || strftime(e.ends_at, '%H:%M'), '')
            || ' ' || e.activity || ' by ' || e.staff_id
            || coalesce(' (' || s.role || ')', '') || ', ' || e.minutes || ' min'
            || case when e.counted_minutes > 0 then ', ' || e.counted_minutes || ' counted' else '' end
            || coalesce('; reason: ' || e.exclusion_reason, '')
            || case when e.exclusion_reason is null and e.overlap_minutes > 0
                then '; ' || e.overlap_minutes || ' min ' || e.overlap_reason else '' end
            || '; ' || e.source_file || ' row ' || e.source_row,
        10
    from int_time_entries_classified as e
    left join stg_staff as s using (staff_id)
),

final as (
    select * from outcomes
    union all
    select * from gates
    union all
    select * from thresholds
    union all
    select * from scrub
    union all
    select * from entries
)

select * from final
