-- purpose: provider-level adjustments of 835 payments (PLB): interest, forward balances,
--          recoupments ... per provider and fiscal period, with the reason code (PLB03-1) and its
--          reference (PLB03-2); a positive amount reduces the payment (BPR02), a negative one adds to it
-- grain: payer_identifier, trace_number, adjustment_index
-- upstream: raw_remittance_provider_adjustments, raw_remittance_payments
with paid as (
    -- the latest 835 delivery of each payment (BPR/TRN): a re-delivery replaces the payment as a whole,
    -- one without PLB or CAS rows leaves none of the earlier ones (CSV extracts deliver each table in
    -- its own file: without a payment row, the latest delivery of each table wins)
    select coalesce(payer_identifier, '') as payer_key, trace_number, max(delivery_seq) as delivery_seq
    from raw_remittance_payments
    group by all
),

source as (
    select r.*, coalesce(r.payer_identifier, '') as payer_key
    from raw_remittance_provider_adjustments as r
    left join paid as p on p.payer_key = coalesce(r.payer_identifier, '') and p.trace_number = r.trace_number
    qualify r.delivery_seq = max(r.delivery_seq) over (partition by payer_key, r.trace_number)
        and r.delivery_seq >= coalesce(p.delivery_seq, 0)
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
