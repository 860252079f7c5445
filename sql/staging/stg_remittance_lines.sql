-- purpose: service lines of 835 remittances (SVC), latest delivery of each payment (trace number)
-- grain: trace_number, claim_index, line_index
-- upstream: raw_remittance_lines
with source as (
    select * from raw_remittance_lines
    qualify delivery_seq = max(delivery_seq) over (partition by trace_number)
),

final as (
    select
        trace_number,
        claim_index,
        line_index,
        upper(code) as code,
        coalesce(modifiers, '') as modifiers,
        charge::decimal(12, 2) as charge,
        paid::decimal(12, 2) as paid,
        coalesce(units, 1) as units,
        service_date,
        line_control_number,
        source_file,
        delivery_seq
    from source
    qualify row_number() over (partition by trace_number, claim_index, line_index order by source_row desc) = 1
)

select * from final
