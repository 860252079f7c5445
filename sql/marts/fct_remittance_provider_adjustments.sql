-- purpose: provider-level adjustments of 835 payments (PLB) per provider and fiscal period, with the
--          reason in words (ref_plb_reason_codes: interest, forward balance, overpayment recovery ...);
--          the amount as sent (positive reduces the payment) and its effect on the payment (its negative)
-- grain: payer_identifier, trace_number, adjustment_index
-- upstream: stg_remittance_provider_adjustments, stg_remittance_payments, ref_plb_reason_codes
with adjustments as (
    select * from stg_remittance_provider_adjustments
),

final as (
    select
        a.payer_identifier,
        a.trace_number,
        a.adjustment_index,
        p.payer_id,
        p.payer_name,
        p.payment_date,
        a.provider_id,
        a.fiscal_period_date,
        a.reason_code,
        coalesce(r.description, 'unknown PLB reason code') as reason_description,
        r.kind as reason_kind,
        a.reference_id,
        a.amount,
        (-a.amount)::decimal(12, 2) as effect_on_payment,
        a.source_file
    from adjustments as a
    left join stg_remittance_payments as p using (payer_identifier, trace_number)
    left join ref_plb_reason_codes as r on r.code = a.reason_code
)

select * from final
