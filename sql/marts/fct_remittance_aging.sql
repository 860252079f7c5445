-- purpose: claims of closed months with no 835 answer yet, days since they were sent (or since the
--          month ended when this warehouse recorded no submission), and whether that is past the
--          remittance_aging_days setting (ref_x12_settings)
-- grain: claim_id
-- upstream: fct_claim_payments, ref_x12_settings
with waiting as (
    select * from fct_claim_payments
    where payment_status in ('no answer', 'not submitted')
),

setting as (
    select value::integer as days from ref_x12_settings where setting = 'remittance_aging_days'
),

final as (
    select
        w.claim_id,
        -- one value per claim: the claim id is a hash of patient, program, month, payer and facility;
        -- the status and first submission are the claim's (its ledger row) for every waiting line
        any_value(w.patient_id) as patient_id,
        any_value(w.payer_id) as payer_id,
        any_value(w.service_month) as service_month,
        string_agg(w.code, ', ' order by w.code) as codes,
        sum(w.charge)::decimal(14, 2) as charge,
        sum(w.expected_amount)::decimal(14, 2) as expected_amount,
        any_value(w.payment_status) as payment_status,
        any_value(w.first_submitted_on) as first_submitted_on,
        max(w.days_without_answer) as days_without_answer,
        max(w.days_without_answer) > any_value(s.days) as past_aging_limit
    from waiting as w
    cross join setting as s
    group by w.claim_id
)

select * from final
