-- purpose: service lines of 835 remittances (SVC): the adjudicated code (SVC01), the billed code when
--          the payer re-coded (SVC06), our line control number (REF 6R); the latest delivery of each
--          payment (payer + trace number) wins
-- grain: payer_identifier, trace_number, claim_index, line_index
-- upstream: raw_remittance_lines, raw_remittance_payments
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
    from raw_remittance_lines as r
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
