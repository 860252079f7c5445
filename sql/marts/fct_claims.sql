-- purpose: billable claim lines for closed months (the month-end true-up): every code with units,
--          the payer's modifiers, the date of service and the expected (allowed) amount; a line with no
--          fee-schedule rate in force stays, with price_status 'unpriced', no amounts and the reason
-- grain: enrollment_id, service_month, code
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: fct_patient_months, int_billing_codes, int_threshold_dates, ref_modifiers
with months as (
    select * from fct_patient_months
    where month_status = 'closed' and blocked_reason is null
),

codes as (
    select * from int_billing_codes
    where scenario = 'actual' and units > 0
),

modifiers as (
    select
        c.enrollment_id,
        c.service_month,
        c.code,
        string_agg(distinct x.modifier, ',' order by x.modifier) as modifiers
    from codes as c
    inner join ref_modifiers as x
        on x.code = c.code
        and x.payer_id in (c.payer_id, '*')
        and x.condition = 'always'
        and c.service_month >= x.effective_from
        and (x.effective_to is null or c.service_month <= x.effective_to)
    group by all
),

final as (
    select
        m.patient_id || '-' || strftime(m.service_month, '%Y%m') || '-' || m.program || '-' || c.code
            as claim_line_id,
        m.facility_id,
        m.patient_id,
        m.payer_id,
        m.program,
        m.service_month,
        c.code,
        c.units,
        coalesce(x.modifiers, '') as modifiers,
        -- default: last day of the month; payer setting threshold_met: the day the floor was reached;
        -- never a day after the patient's discharge (last_service_day: the discharge day in the
        -- discharge month)
        least(
            case
                when m.date_of_service_policy = 'threshold_met' then coalesce(d.threshold_met_on, m.last_service_day)
                else m.last_service_day
            end,
            m.last_service_day
        ) as date_of_service,
        c.unit_amount,
        c.amount as expected_amount,
        -- priced | unpriced (no fee_schedule.csv row in force for the payer or '*', or a row without an
        -- amount): an unpriced line is reported (fct_unpriced_claim_lines), never priced at another year
        case when c.unit_amount is null then 'unpriced' else 'priced' end as price_status,
        c.unpriced_reason,
        c.fee_basis,
        -- expected collection = allowed amount x (1 - expected denial rate), split payer / patient
        round(c.amount * (1 - m.expected_denial_rate), 2) as expected_collection,
        round(c.amount * (1 - m.expected_denial_rate) * m.patient_coinsurance_share, 2) as patient_share,
        round(c.amount * (1 - m.expected_denial_rate), 2)
            - round(c.amount * (1 - m.expected_denial_rate) * m.patient_coinsurance_share, 2) as payer_share,
        m.rule_set,
        m.month_type,
        m.countable_minutes,
        m.billing_provider_id,
        m.care_manager_id,
        m.enrollment_id,
        m.episode_number,
        m.facility_type
    from months as m
    inner join codes as c using (enrollment_id, service_month)
    left join modifiers as x using (enrollment_id, service_month, code)
    left join int_threshold_dates as d using (enrollment_id, service_month)
)

select * from final
