-- purpose: every 835 payment (payer + trace number) balanced as the 005010X221A1 guide requires
--          (section 1.10.2.1, BPR02): the payment amount = the claims paid (sum of CLP04) - the
--          provider-level adjustments (sum of PLB amounts); an unbalanced payment is flagged with the
--          difference, never silently accepted. BPR03 D (debit) makes the amount negative
-- grain: payer_identifier, trace_number
-- upstream: stg_remittance_payments, stg_remittance_claims, stg_remittance_provider_adjustments,
--           fct_remittance_lines
with payments as (
    select * from stg_remittance_payments
),

claims as (
    select payer_identifier, trace_number, count(*) as claims, sum(paid) as claims_paid
    from stg_remittance_claims
    group by all
),

plb as (
    select payer_identifier, trace_number, count(*) as provider_adjustments, sum(amount) as provider_adjustment_amount
    from stg_remittance_provider_adjustments
    group by all
),

unmatched as (
    select payer_identifier, trace_number, count(*) as unmatched_lines, sum(paid) as unmatched_paid
    from fct_remittance_lines
    where claim_line_id is null
    group by all
),

final as (
    select
        p.payer_identifier,
        p.trace_number,
        p.payer_id,
        p.payer_edi_id,
        p.payer_name,
        p.payment_date,
        p.payment_method,
        (case when p.credit_debit = 'D' then -p.payment_amount else p.payment_amount end)::decimal(14, 2)
            as payment_amount,
        coalesce(c.claims, 0) as claims,
        coalesce(c.claims_paid, 0)::decimal(14, 2) as claims_paid,
        coalesce(b.provider_adjustments, 0) as provider_adjustments,
        coalesce(b.provider_adjustment_amount, 0)::decimal(14, 2) as provider_adjustment_amount,
        (coalesce(c.claims_paid, 0) - coalesce(b.provider_adjustment_amount, 0))::decimal(14, 2) as expected_payment,
        (
            (case when p.credit_debit = 'D' then -p.payment_amount else p.payment_amount end)
            - (coalesce(c.claims_paid, 0) - coalesce(b.provider_adjustment_amount, 0))
        )::decimal(14, 2) as difference,
        coalesce(u.unmatched_lines, 0) as unmatched_lines,
        coalesce(u.unmatched_paid, 0)::decimal(14, 2) as unmatched_paid,
        p.source_file
    from payments as p
    left join claims as c using (payer_identifier, trace_number)
    left join plb as b using (payer_identifier, trace_number)
    left join unmatched as u using (payer_identifier, trace_number)
)

select *, difference = 0 as balanced from final
