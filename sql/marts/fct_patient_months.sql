-- purpose: the status of every enrolled patient-month: minutes, month type, gates, what it bills
--          now, what it would bill with consent, the next reachable code and its dollars; programs of
--          one same_month_group (ref_programs: CoCM, 99484, G0323) never bill in the same month, the
--          higher-paying one bills
-- grain: enrollment_id, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_patient_months, int_month_prerequisites, int_billing_codes, int_billing_inputs,
--           ref_programs
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
        round(sum(amount_over_cap), 2) as amount_over_cap,
        -- codes with no fee-schedule row in force (e.g. FQHC/RHC G0512/G0511: no rate is shipped)
        string_agg(distinct code, ', ' order by code) filter (where units > 0 and unit_amount is null)
            as unpriced_codes
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
        m.facility_type,
        m.billing_provider_id,
        m.care_manager_id,
        m.service_month,
        m.month_status,
        m.month_type,
        m.episode_number,
        m.rule_set,
        m.date_of_service_policy,
        m.last_service_day,
        m.logged_minutes,
        m.countable_minutes,
        m.excluded_minutes,
        m.before_consent_minutes,
        m.consentable_minutes,
        m.psych_reviews,
        m.psych_review_evidence,
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
        coalesce(a.codes, '') as current_codes,
        coalesce(a.amount, 0) as current_amount,
        a.unpriced_codes,
        coalesce(c.amount, 0) as if_consented_amount,
        coalesce(a.units_over_cap, 0) as units_over_cap,
        coalesce(a.minutes_over_cap, 0) as minutes_over_cap,
        coalesce(a.amount_over_cap, 0) as amount_over_cap,
        t.next_target_minutes,
        t.next_target_minutes - m.countable_minutes as minutes_needed,
        n.codes as next_codes,
        n.amount as next_amount,
        -- an unpriced next code gains $0 (its rate is unknown), not null
        round(coalesce(n.amount, case when n.codes is not null then 0 end) - coalesce(a.amount, 0), 2)
            as dollars_gained
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

-- programs of one same_month_group (CoCM, 99484, G0323) are never billed for the same patient-month:
-- the higher-paying program bills (a month with codes counts even when a code has no rate yet)
ranked as (
    select
        j.*,
        row_number() over same_month as program_rank,
        count(*) filter (where j.failed_gates = '' and j.current_codes <> '') over (
            partition by j.patient_id, j.service_month, coalesce(g.same_month_group, j.program)
        ) as billable_programs
    from joined as j
    left join ref_programs as g using (program)
    window same_month as (
        partition by j.patient_id, j.service_month, coalesce(g.same_month_group, j.program)
        order by (j.failed_gates = '' and j.current_codes <> '') desc, j.current_amount desc, j.program
    )
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
            case when double_billing_risk then 'double billing risk: outside psychotherapy' end,
            case when unpriced_codes is not null then 'no fee_schedule.csv rate for ' || unpriced_codes
                || ' (payer ' || payer_id || ', ' || strftime(service_month, '%Y-%m')
                || '): load your contracted rate' end
        ) as warnings
    from ranked
)

select * from final
