-- purpose: claims paid or denied by 835 remittances (CLP); the latest delivery of each payment
--          (payer + trace number) wins as a whole; the payer mapped from its EDI id (ref_payer_edi)
-- grain: payer_identifier, trace_number, claim_index
-- upstream: raw_remittance_claims, raw_remittance_payments, ref_payer_edi
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
    from raw_remittance_claims as r
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
        s.claim_index,
        p.payer_id,
        s.payer_edi_id,
        s.payment_date,
        s.claim_id,
        s.claim_status,
        s.charge::decimal(12, 2) as charge,
        s.paid::decimal(12, 2) as paid,
        coalesce(s.patient_responsibility, 0)::decimal(12, 2) as patient_responsibility,
        s.payer_claim_control_number,
        s.member_id,
        s.source_file,
        s.delivery_seq
    from source as s
    left join payers as p using (payer_edi_id)
    qualify row_number() over (partition by s.payer_key, s.trace_number, s.claim_index order by s.source_row desc) = 1
)

select * from final
