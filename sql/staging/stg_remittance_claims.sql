-- purpose: claims paid or denied by 835 remittances (CLP), the latest delivery of each payment (trace
--          number) wins as a whole; the payer mapped from its EDI id (ref_payer_edi)
-- grain: trace_number, claim_index
-- upstream: raw_remittance_claims, ref_payer_edi
with source as (
    select * from raw_remittance_claims
    qualify delivery_seq = max(delivery_seq) over (partition by trace_number)
),

payers as (
    select payer_edi_id, any_value(payer_id) as payer_id from ref_payer_edi group by payer_edi_id
),

final as (
    select
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
    qualify row_number() over (partition by s.trace_number, s.claim_index order by s.source_row desc) = 1
)

select * from final
