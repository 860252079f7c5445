-- purpose: 835 payments (BPR amount and date, TRN trace number, payer); a payment is the payer
--          (TRN03, else the payer's id) and the trace number (TRN02): a later delivery of the same
--          payment replaces it as a whole, another payer's payment with the same trace number never does
-- grain: payer_identifier, trace_number
-- upstream: raw_remittance_payments, ref_payer_edi
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
    from raw_remittance_payments as r
    left join paid as p on p.payer_key = coalesce(r.payer_identifier, '') and p.trace_number = r.trace_number
    qualify r.delivery_seq = max(r.delivery_seq) over (partition by payer_key, r.trace_number)
        and r.delivery_seq >= coalesce(p.delivery_seq, 0)
),

payers as (
    select payer_edi_id, any_value(payer_id) as payer_id from ref_payer_edi group by payer_edi_id
),

final as (
    select
        s.payer_key as payer_identifier,
        s.trace_number,
        p.payer_id,
        s.payer_edi_id,
        s.payer_name,
        s.payment_date,
        s.payment_amount::decimal(12, 2) as payment_amount,
        upper(s.credit_debit) as credit_debit,
        upper(s.payment_method) as payment_method,
        s.source_file,
        s.delivery_seq
    from source as s
    left join payers as p using (payer_edi_id)
    qualify row_number() over (partition by s.payer_key, s.trace_number order by s.source_row desc) = 1
)

select * from final
