-- purpose: provider-level adjustments of 835 payments (PLB): interest, forward balances,
--          recoupments ... per provider and fiscal period, with the reason code (PLB03-1) and its
--          reference (PLB03-2); a positive amount reduces the payment (BPR02), a negative one adds to it
-- grain: payer_identifier, trace_number, adjustment_index
-- upstream: raw_remittance_provider_adjustments
with source as (
    select *, coalesce(payer_identifier, '') as payer_key from raw_remittance_provider_adjustments
    qualify delivery_seq = max(delivery_seq) over (partition by payer_key, trace_number)
),

final as (
    select
        payer_key as payer_identifier,
        trace_number,
        adjustment_index,
        provider_id,
        fiscal_period_date,
        upper(reason_code) as reason_code,
        reference_id,
        amount::decimal(12, 2) as amount,
        source_file,
        delivery_seq
    from source
    qualify row_number() over (partition by payer_key, trace_number, adjustment_index order by source_row desc) = 1
)

select * from final
