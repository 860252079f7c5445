-- purpose: what every closed patient-month would bill under the other time reading (midpoint vs
--          full time) with the same minutes and prerequisites: the value of a payer's time rule.
--          A what-if, never a claim.
-- grain: enrollment_id, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: fct_patient_months, int_billing_codes, ref_rule_sets
with closed as (
    select * from fct_patient_months
    where month_status = 'closed'
),

what_if as (
    select
        enrollment_id,
        service_month,
        -- at most one base code and one add-on per scenario: the base first (no sort needed)
        nullif(concat_ws(' + ',
            max(case when kind = 'base' and units > 0 then code end),
            max(case when kind = 'add_on' and units > 0 then code || case when units > 1 then ' x' || units else '' end end)
        ), '') as codes,
        round(sum(amount), 2) as amount
    from int_billing_codes
    where scenario = 'what_if'
    group by all
),

final as (
    select
        c.facility_id,
        c.patient_id,
        c.payer_id,
        c.program,
        c.service_month,
        c.countable_minutes,
        c.rule_set,
        c.current_codes as codes,
        c.billable_amount as amount,
        r.what_if_rule_set,
        coalesce(w.codes, '') as what_if_codes,
        -- the same gates apply under either reading
        case when c.blocked_reason is null then coalesce(w.amount, 0) else 0 end as what_if_amount,
        round(case when c.blocked_reason is null then coalesce(w.amount, 0) else 0 end - c.billable_amount, 2)
            as difference,
        c.enrollment_id
    from closed as c
    inner join ref_rule_sets as r using (rule_set)
    left join what_if as w using (enrollment_id, service_month)
)

select * from final
