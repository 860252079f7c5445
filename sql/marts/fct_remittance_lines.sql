-- purpose: every 835 service line with its amounts by adjustment group and the claim line it pays:
--          matched first by claim id (CLP01) and code, else by patient (member id), date of service and
--          code when exactly one claim line fits; the balance check charge = paid + adjustments
-- grain: trace_number, claim_index, line_index
-- upstream: stg_remittance_lines, stg_remittance_claims, stg_remittance_adjustments, stg_patients,
--           fct_x12_claim_lines
with remit as (
    select
        l.*,
        c.claim_id,
        c.claim_status,
        c.payer_id,
        c.payment_date,
        c.member_id,
        c.payer_claim_control_number
    from stg_remittance_lines as l
    inner join stg_remittance_claims as c using (trace_number, claim_index)
),

amounts as (
    select
        trace_number,
        claim_index,
        line_index,
        sum(amount) filter (where group_code = 'PR') as patient_responsibility,
        sum(amount) filter (where group_code = 'CO') as contractual_adjustment,
        sum(amount) filter (where group_code not in ('PR', 'CO')) as other_adjustment,
        string_agg(distinct group_code || '-' || reason_code, ',' order by group_code || '-' || reason_code)
            filter (where kind = 'carc') as carc_codes,
        string_agg(distinct reason_code, ',' order by reason_code) filter (where kind = 'rarc') as rarc_codes
    from stg_remittance_adjustments
    where line_index is not null
    group by all
),

by_claim as (
    select r.trace_number, r.claim_index, r.line_index, x.claim_line_id, 'claim id and code' as matched_by
    from remit as r
    inner join fct_x12_claim_lines as x on x.claim_id = r.claim_id and x.code = r.code
),

by_patient as (
    select r.trace_number, r.claim_index, r.line_index, x.claim_line_id,
           'patient, date of service and code' as matched_by
    from remit as r
    inner join stg_patients as p on p.member_id = r.member_id
    inner join fct_x12_claim_lines as x
        on x.patient_id = p.patient_id and x.date_of_service = r.service_date and x.code = r.code
    where not exists (
        select 1 from by_claim as b
        where b.trace_number = r.trace_number and b.claim_index = r.claim_index and b.line_index = r.line_index
    )
    qualify count(*) over (partition by r.trace_number, r.claim_index, r.line_index) = 1
),

matches as (
    select * from by_claim
    union all
    select * from by_patient
),

final as (
    select
        r.trace_number,
        r.claim_index,
        r.line_index,
        r.claim_id,
        r.claim_status,
        r.payer_id,
        r.payment_date,
        r.payer_claim_control_number,
        r.code,
        r.modifiers,
        r.units,
        r.service_date,
        r.charge,
        r.paid,
        coalesce(a.patient_responsibility, 0)::decimal(12, 2) as patient_responsibility,
        coalesce(a.contractual_adjustment, 0)::decimal(12, 2) as contractual_adjustment,
        coalesce(a.other_adjustment, 0)::decimal(12, 2) as other_adjustment,
        r.charge = r.paid + coalesce(a.patient_responsibility, 0) + coalesce(a.contractual_adjustment, 0)
            + coalesce(a.other_adjustment, 0) as balanced,
        a.carc_codes,
        a.rarc_codes,
        m.claim_line_id,
        m.matched_by,
        r.source_file,
        r.delivery_seq
    from remit as r
    left join amounts as a using (trace_number, claim_index, line_index)
    left join matches as m using (trace_number, claim_index, line_index)
)

select * from final
