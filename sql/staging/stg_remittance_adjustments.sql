-- purpose: adjustments of 835 remittances: CAS group + reason code (CARC) with amount, and remark
--          codes (RARC, kind 'rarc', no amount) from LQ (line), MOA / MIA (claim); line_index null =
--          a claim-level adjustment; the latest delivery of each payment (payer + trace number) wins
-- grain: payer_identifier, trace_number, claim_index, adjustment_index
-- upstream: raw_remittance_adjustments, raw_remittance_payments
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
    from raw_remittance_adjustments as r
    left join paid as p on p.payer_key = coalesce(r.payer_identifier, '') and p.trace_number = r.trace_number
    qualify r.delivery_seq = max(r.delivery_seq) over (partition by payer_key, r.trace_number)
        and r.delivery_seq >= coalesce(p.delivery_seq, 0)
),

final as (
    select
        payer_key as payer_identifier,
        trace_number,
        claim_index,
        line_index,
        adjustment_index,
        lower(kind) as kind,
        upper(group_code) as group_code,
        upper(reason_code) as reason_code,
        coalesce(amount, 0)::decimal(12, 2) as amount,
        quantity
    from source
    qualify row_number() over (
        partition by payer_key, trace_number, claim_index, adjustment_index order by source_row desc
    ) = 1
)

select * from final
