-- purpose: collection by payer and service month: expected (allowed) amount, charges, paid, patient
--          responsibility, denied / underpaid / unanswered dollars and the collection rate: what the
--          payer paid / expected, over the lines that were answered. Patient responsibility is owed by
--          the patient, not collected: it is shown beside the rate, never inside it
-- grain: payer_id, service_month
-- upstream: fct_claim_payments
with lines as (
    select * from fct_claim_payments
),

final as (
    select
        payer_id,
        service_month,
        count(*) as claim_lines,
        count(*) filter (where payment_status not in ('no answer', 'not submitted')) as answered_lines,
        count(*) filter (where payment_status = 'denied') as denied_lines,
        sum(charge)::decimal(14, 2) as charge,
        sum(expected_amount)::decimal(14, 2) as expected_amount,
        sum(paid)::decimal(14, 2) as paid,
        sum(patient_responsibility)::decimal(14, 2) as patient_responsibility,
        sum(expected_amount) filter (where payment_status = 'denied')::decimal(14, 2) as denied_expected_amount,
        sum(-contract_variance) filter (where payment_status = 'underpaid')::decimal(14, 2) as underpaid_amount,
        sum(expected_amount) filter (where payment_status in ('no answer', 'not submitted'))::decimal(14, 2)
            as unanswered_expected_amount,
        sum(paid) filter (where payment_status not in ('no answer', 'not submitted'))::decimal(14, 2)
            as answered_collected,
        sum(expected_amount) filter (where payment_status not in ('no answer', 'not submitted'))::decimal(14, 2)
            as answered_expected_amount
    from lines
    group by all
)

select *, round(answered_collected / nullif(answered_expected_amount, 0), 4) as collection_rate from final
