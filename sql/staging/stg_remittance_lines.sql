-- purpose: service lines of 835 remittances (SVC): the adjudicated code (SVC01), the billed code when
--          the payer re-coded (SVC06), our line control number (REF 6R); the latest delivery of each
--          payment (payer + trace number) wins
-- grain: payer_identifier, trace_number, claim_index, line_index
-- upstream: raw_remittance_lines
with source as (
    select *, coalesce(payer_identifier, '') as payer_key from raw_remittance_lines
    qualify delivery_seq = max(delivery_seq) over (partition by payer_key, trace_number)
),

final as (
    select
        payer_key as payer_identifier,
        trace_number,
        claim_index,
        line_index,
        upper(code) as code,
        upper(original_code) as original_code,
        coalesce(modifiers, '') as modifiers,
        charge::decimal(12, 2) as charge,
        paid::decimal(12, 2) as paid,
        coalesce(units, 1) as units,
        service_date,
        line_control_number,
        source_file,
        delivery_seq
    from source
    qualify row_number() over (
        partition by payer_key, trace_number, claim_index, line_index order by source_row desc
    ) = 1
)

select * from final
