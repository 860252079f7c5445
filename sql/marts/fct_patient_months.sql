-- purpose: the status of every enrolled patient-month: minutes, month type, gates, what it bills
--          now, what it would bill with consent, the next reachable code and its dollars
-- grain: enrollment_id, service_month
-- upstream: int_patient_months, int_month_prerequisites, int_billing_codes, int_billing_inputs
with months as (
    select * from int_patient_months
),

scenario_totals as (
    select
        enrollment_id,
        service_month,
        scenario,
        -- at most one base code and one add-on per scenario: the base first (no sort needed)
        nullif(concat_ws(' + ',
            max(case when kind = 'base' and units > 0 then code end),
            max(case when kind = 'add_on' and units > 0 then code || case when units > 1 then ' x' || units else '' end end)
        ), '') as codes,
        round(sum(amount), 2) as amount,
        sum(units_over_cap)::integer as units_over_cap,
        sum(minutes_over_cap)::integer as minutes_over_cap,
        round(sum(amount_over_cap), 2) as amount_over_cap
    from int_billing_codes
    group by all
),

targets as (
    select enrollment_id, service_month, minutes as next_target_minutes
    from int_billing_inputs
    where scenario = 'next_target'
),

joined as (
    select
        m.enrollment_id,
        m.patient_id,
        m.program,
        m.payer_id,
        m.facility_id,
        m.billing_provider_id,
        m.care_manager_id,
        m.service_month,
        m.month_status,
        m.month_type,
        m.episode_number,
        m.rule_set,
        m.date_of_service_policy,
        m.logged_minutes,
        m.countable_minutes,
        m.excluded_minutes,
        m.before_consent_minutes,
        m.consentable_minutes,
        m.psych_reviews,
        m.consent_on,
        m.consent_ok,
        m.psych_review_ok,
        q.initiating_visit_ok,
        q.initiating_visit_on,
        q.diagnosis_ok,
        q.diagnosis_code,
        q.measurement_ok,
        q.measurement_is_gate,
        q.double_billing_risk,
        m.expected_denial_rate,
        m.patient_coinsurance_share,
        -- the gates that fail, in audit order (measurement only where the payer makes it a gate)
        concat_ws(' + ',
            case when not m.consent_ok then 'missing_consent' end,
            case when not m.psych_review_ok then 'missing_psych_review' end,
            case when not q.initiating_visit_ok then 'missing_initiating_visit' end,
            case when not q.diagnosis_ok then 'missing_bh_diagnosis' end,
            case when q.measurement_is_gate and not q.measurement_ok then 'missing_measurement' end
        ) as failed_gates,
        m.days_left,
        coalesce(a.codes, '') as current_codes,
        coalesce(a.amount, 0) as current_amount,
        coalesce(c.amount, 0) as if_consented_amount,
        coalesce(a.units_over_cap, 0) as units_over_cap,
        coalesce(a.minutes_over_cap, 0) as minutes_over_cap,
        coalesce(a.amount_over_cap, 0) as amount_over_cap,
        t.next_target_minutes,
        t.next_target_minutes - m.countable_minutes as minutes_needed,
        n.codes as next_codes,
        n.amount as next_amount,
        round(n.amount - coalesce(a.amount, 0), 2) as dollars_gained
    from months as m
    inner join int_month_prerequisites as q using (patient_id, program, service_month)
    left join scenario_totals as a
        on a.enrollment_id = m.enrollment_id and a.service_month = m.service_month and a.scenario = 'actual'
    left join scenario_totals as c
        on c.enrollment_id = m.enrollment_id and c.service_month = m.service_month and c.scenario = 'if_consented'
    left join scenario_totals as n
        on n.enrollment_id = m.enrollment_id and n.service_month = m.service_month and n.scenario = 'next_target'
    left join targets as t
        on t.enrollment_id = m.enrollment_id and t.service_month = m.service_month
),

-- CoCM and 99484 are never billed for the same patient-month: the higher-paying program bills
ranked as (
    select
        *,
        row_number() over (
            partition by patient_id, service_month
            order by (failed_gates = '' and current_amount > 0) desc, current_amount desc, program
        ) as program_rank,
        count(*) filter (where failed_gates = '' and current_amount > 0) over (
            partition by patient_id, service_month
        ) as billable_programs
    from joined
),

final as (
    select
        * exclude (program_rank, billable_programs),
        -- a failed gate blocks the whole month for the program
        case
            when failed_gates <> '' then failed_gates
            when billable_programs > 1 and program_rank > 1 then 'billed_under_other_program'
        end as blocked_reason,
        case
            when failed_gates = '' and not (billable_programs > 1 and program_rank > 1) then current_amount
            else 0
        end as billable_amount,
        concat_ws('; ',
            case when not measurement_ok and not measurement_is_gate then 'no validated rating scale' end,
            case when double_billing_risk then 'double billing risk: outside psychotherapy' end
        ) as warnings
    from ranked
)

select * from final
