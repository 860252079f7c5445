-- purpose: 835 payments (BPR amount and date, TRN trace number, payer); a payment is the payer
--          (TRN03, else the payer's id) and the trace number (TRN02): a later delivery of the same
--          payment replaces it as a whole, another payer's payment with the same trace number never does
-- grain: payer_identifier, trace_number
-- upstream: raw_remittance_payments, ref_payer_edi
with source as (
    -- the latest 835 delivery of each payment (BPR/TRN): a re-delivery replaces the payment as a whole
    -- (the other remittance staging models keep only the rows of that delivery)
    select *, coalesce(payer_identifier, '') as payer_key
    from raw_remittance_payments
    qualify delivery_seq = max(delivery_seq) over (partition by coalesce(payer_identifier, ''), trace_number)
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
