-- purpose: every answer of an 835 per service line, net of the claim-level adjustments, and the
--          claim line it pays. A claim answered with service lines (SVC, loop 2110) gives a row per
--          line; a claim answered without any (a claim-level denial or reversal, CLP + CAS only) gives
--          a row per billed line of that claim, the claim's charge and payment allocated by billed
--          charge. Claim-level CAS amounts are allocated to the claim's rows by charge (the last row
--          takes the cents left), so paid = SVC03 - its share of the claim-level adjustments and the
--          adjustments of a claim are counted once (005010X221A1 section 1.10.2: CLP04 = sum of SVC03
--          - claim-level CAS). Matching, first that fits: the billed line of a claim answered at claim
--          level; claim id (CLP01) + line control number (REF 6R); claim id + code (SVC01); claim id +
--          billed code (SVC06, when the payer re-coded the line); patient (member id) + date of service
--          + code when exactly one claim line fits. Balance checks of the guide: a line balances when
--          SVC02 = SVC03 + its CAS, a claim when CLP03 = CLP04 + all its CAS
-- grain: payer_identifier, trace_number, claim_index, line_index
-- upstream: int_remittance_answers, int_remittance_line_adjustments, stg_remittance_claims,
--           stg_remittance_adjustments, stg_patients, fct_x12_claim_lines
with claims as (
    select * from stg_remittance_claims
),

all_lines as (
    select * from int_remittance_answers
),

line_adjustments as (
    select * from int_remittance_line_adjustments
),

remarks as (
    -- remark codes: a line's own (LQ) and its claim's (MOA / MIA, claim-level LQ)
    select l.payer_identifier, l.trace_number, l.claim_index, l.line_index, a.reason_code
    from all_lines as l
    inner join stg_remittance_adjustments as a
        on a.payer_identifier = l.payer_identifier and a.trace_number = l.trace_number
        and a.claim_index = l.claim_index and (a.line_index = l.line_index or a.line_index is null)
    where a.kind = 'rarc'
),

amounts as (
    select
        payer_identifier, trace_number, claim_index, line_index,
        sum(amount) filter (where group_code = 'PR') as patient_responsibility,
        sum(amount) filter (where group_code = 'CO') as contractual_adjustment,
        sum(amount) filter (where group_code not in ('PR', 'CO')) as other_adjustment,
        sum(amount) filter (where level = 'claim') as claim_level_adjustment,
        sum(amount) filter (where level = 'line') as line_level_adjustment,
        string_agg(distinct group_code || '-' || reason_code, ',' order by group_code || '-' || reason_code)
            as carc_codes
    from line_adjustments
    group by all
),

remark_codes as (
    select payer_identifier, trace_number, claim_index, line_index,
           string_agg(distinct reason_code, ',' order by reason_code) as rarc_codes
    from remarks
    group by all
),

claim_balance as (
    select
        c.payer_identifier, c.trace_number, c.claim_index,
        c.charge = c.paid + coalesce((
            select sum(a.amount) from stg_remittance_adjustments as a
            where a.payer_identifier = c.payer_identifier and a.trace_number = c.trace_number
                and a.claim_index = c.claim_index and a.kind = 'carc'
        ), 0) as claim_balanced
    from claims as c
),

remit as (
    select
        l.*, c.claim_id, c.claim_status, c.payer_id, c.payment_date, c.member_id, c.payer_claim_control_number,
        c.source_file, c.delivery_seq
    from all_lines as l
    inner join claims as c using (payer_identifier, trace_number, claim_index)
),

candidates as (
    select r.payer_identifier, r.trace_number, r.claim_index, r.line_index, r.billed_claim_line_id as claim_line_id,
           0 as priority, 'claim id (answered at claim level)' as matched_by
    from remit as r where r.billed_claim_line_id is not null
    union all
    select r.payer_identifier, r.trace_number, r.claim_index, r.line_index, x.claim_line_id, 1,
           'claim id and line control number'
    from remit as r
    inner join fct_x12_claim_lines as x on x.claim_id = r.claim_id and x.line_control_number = r.line_control_number
    where r.answered_at = 'service line'
    union all
    select r.payer_identifier, r.trace_number, r.claim_index, r.line_index, x.claim_line_id, 2, 'claim id and code'
    from remit as r
    inner join fct_x12_claim_lines as x on x.claim_id = r.claim_id and x.code = r.code
    where r.answered_at = 'service line'
    union all
    select r.payer_identifier, r.trace_number, r.claim_index, r.line_index, x.claim_line_id, 3,
           'claim id and billed code (SVC06, re-coded by the payer)'
    from remit as r
    inner join fct_x12_claim_lines as x on x.claim_id = r.claim_id and x.code = r.original_code
    where r.answered_at = 'service line'
    union all
    select r.payer_identifier, r.trace_number, r.claim_index, r.line_index, x.claim_line_id, 4,
           'patient, date of service and code'
    from remit as r
    inner join stg_patients as p on p.member_id = r.member_id
    inner join fct_x12_claim_lines as x
        on x.patient_id = p.patient_id and x.date_of_service = r.service_date
        and x.code = coalesce(r.original_code, r.code)
    where r.answered_at = 'service line'
),

matches as (
    -- the first rule that fits, when it names exactly one claim line
    select payer_identifier, trace_number, claim_index, line_index, claim_line_id, matched_by
    from candidates
    qualify priority = min(priority) over (partition by payer_identifier, trace_number, claim_index, line_index)
        and count(*) over (partition by payer_identifier, trace_number, claim_index, line_index, priority) = 1
),

final as (
    select
        r.payer_identifier,
        r.trace_number,
        r.claim_index,
        r.line_index,
        r.claim_id,
        r.claim_status,
        r.claim_status = '22' as is_reversal,
        r.answered_at,
        r.payer_id,
        r.payment_date,
        r.payer_claim_control_number,
        r.code,
        r.original_code,
        r.modifiers,
        r.units,
        r.service_date,
        r.line_control_number,
        r.charge,
        case when r.answered_at = 'claim' then r.paid
            else r.paid - coalesce(a.claim_level_adjustment, 0) end::decimal(12, 2) as paid,
        r.paid as paid_on_line,
        coalesce(a.patient_responsibility, 0)::decimal(12, 2) as patient_responsibility,
        coalesce(a.contractual_adjustment, 0)::decimal(12, 2) as contractual_adjustment,
        coalesce(a.other_adjustment, 0)::decimal(12, 2) as other_adjustment,
        coalesce(a.claim_level_adjustment, 0)::decimal(12, 2) as claim_level_adjustment,
        case when r.answered_at = 'claim' then b.claim_balanced
            else r.charge = r.paid + coalesce(a.line_level_adjustment, 0) and b.claim_balanced end as balanced,
        a.carc_codes,
        k.rarc_codes,
        m.claim_line_id,
        m.matched_by,
        r.source_file,
        r.delivery_seq
    from remit as r
    left join amounts as a using (payer_identifier, trace_number, claim_index, line_index)
    left join remark_codes as k using (payer_identifier, trace_number, claim_index, line_index)
    left join claim_balance as b using (payer_identifier, trace_number, claim_index)
    left join matches as m using (payer_identifier, trace_number, claim_index, line_index)
)

select * from final
