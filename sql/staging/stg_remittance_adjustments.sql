-- purpose: adjustments of 835 remittances: CAS group + reason code (CARC) with amount, and LQ remark
--          codes (RARC, kind 'rarc', no amount); line_index null = a claim-level adjustment
-- grain: trace_number, claim_index, adjustment_index
-- upstream: raw_remittance_adjustments
with source as (
    select * from raw_remittance_adjustments
    qualify delivery_seq = max(delivery_seq) over (partition by trace_number)
),

final as (
    select
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
    qualify row_number() over (partition by trace_number, claim_index, adjustment_index order by source_row desc) = 1
)

select * from final
