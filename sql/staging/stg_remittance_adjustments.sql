-- purpose: adjustments of 835 remittances: CAS group + reason code (CARC) with amount, and remark
--          codes (RARC, kind 'rarc', no amount) from LQ (line), MOA / MIA (claim); line_index null =
--          a claim-level adjustment; the latest delivery of each payment (payer + trace number) wins
-- grain: payer_identifier, trace_number, claim_index, adjustment_index
-- upstream: raw_remittance_adjustments
with source as (
    select *, coalesce(payer_identifier, '') as payer_key from raw_remittance_adjustments
    qualify delivery_seq = max(delivery_seq) over (partition by payer_key, trace_number)
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
