-- purpose: the post-submission part of the revenue left on the table: expected dollars denied,
--          underpaid (contract variance) and unanswered past the aging limit, by payer, service
--          month and reason
-- grain: payer_id, service_month, reason
-- upstream: fct_claim_payments, ref_x12_settings
with lines as (
    select * from fct_claim_payments
),

aging as (
    select value::integer as days from ref_x12_settings where setting = 'remittance_aging_days'
),

gaps as (
    select payer_id, service_month, 'denied' as reason, expected_amount as amount from lines
    where payment_status = 'denied'
    union all
    select payer_id, service_month, 'underpaid', -contract_variance from lines
    where payment_status = 'underpaid'
    union all
    select payer_id, service_month, 'no answer past the aging limit', expected_amount from lines
    where payment_status in ('no answer', 'not submitted') and days_without_answer > (select days from aging)
),

final as (
    select payer_id, service_month, reason, count(*) as claim_lines, sum(amount)::decimal(14, 2) as amount
    from gaps
    group by all
)

select * from final
