-- purpose: every claim line of a closed month against what came back, net of reversals, in exactly
--          one state: paid, paid with patient responsibility, underpaid (allowed below the expected
--          amount: contract variance), denied (nothing allowed), reversed (CLP02 22 and not paid
--          again), reversed and re-paid (net of the reversal), no answer (days since submission) or
--          not submitted; the basis of the reconciliation marts. Also
--          reads the close's submission ledger x12_claim_submissions (a table the close writes, not a
--          model; created empty by the remittance load so it always exists)
-- grain: claim_line_id
-- upstream: fct_x12_claim_lines, fct_remittance_lines, run_parameters, ref_x12_settings
with lines as (
    select * from fct_x12_claim_lines
),

paid as (
    select
        claim_line_id,
        count(*) as remittance_lines,
        count(*) filter (where is_reversal) as reversals,
        count(*) filter (where not is_reversal) as answers,
        max(payment_date) filter (where not is_reversal) as last_answer_date,
        max(payment_date) as last_payment_date,
        sum(charge) as remitted_charge,
        sum(paid) as paid,
        sum(patient_responsibility) as patient_responsibility,
        sum(contractual_adjustment) as contractual_adjustment,
        sum(other_adjustment) as other_adjustment,
        string_agg(distinct carc_codes, ',' order by carc_codes) as carc_codes,
        string_agg(distinct rarc_codes, ',' order by rarc_codes) as rarc_codes,
        -- the payer's control number of the latest payment: on one payment date the latest delivery,
        -- then the later claim in the 835 (payment_date alone took either, by row order)
        arg_max(
            payer_claim_control_number, (payment_date, delivery_seq, trace_number, claim_index, line_index)
        ) as payer_claim_control_number,
        string_agg(distinct matched_by, ', ' order by matched_by) as matched_by
    from fct_remittance_lines
    where claim_line_id is not null
    group by claim_line_id
),

sent as (
    -- a claim is in an interchange at most once (the close's ledger), so the last one is one row
    select claim_id, min(submitted_at)::date as first_submitted_on,
           arg_max(frequency_code, interchange_control_number) as last_frequency_code
    from x12_claim_submissions
    group by claim_id
),

tolerance as (
    select value::decimal(12, 2) as amount from ref_x12_settings where setting = 'underpayment_tolerance'
),

final as (
    select
        l.claim_line_id,
        l.claim_id,
        l.line_number,
        l.patient_id,
        l.payer_id,
        l.facility_id,
        l.program,
        l.service_month,
        l.date_of_service,
        l.code,
        l.units,
        l.charge,
        l.expected_amount,
        s.first_submitted_on,
        s.first_submitted_on is not null as submission_recorded,
        p.last_payment_date,
        coalesce(p.paid, 0)::decimal(12, 2) as paid,
        coalesce(p.patient_responsibility, 0)::decimal(12, 2) as patient_responsibility,
        coalesce(p.contractual_adjustment, 0)::decimal(12, 2) as contractual_adjustment,
        coalesce(p.other_adjustment, 0)::decimal(12, 2) as other_adjustment,
        (coalesce(p.paid, 0) + coalesce(p.patient_responsibility, 0))::decimal(12, 2) as allowed_amount,
        case when p.claim_line_id is not null
            then (p.paid + p.patient_responsibility - l.expected_amount)::decimal(12, 2) end as contract_variance,
        p.carc_codes,
        p.rarc_codes,
        p.payer_claim_control_number,
        p.matched_by,
        coalesce(p.reversals, 0) as reversals,
        case
            when p.claim_line_id is null and s.claim_id is null then 'not submitted'
            when p.claim_line_id is null then 'no answer'
            -- a reversal (CLP02 22) cancels an earlier answer; a later answer pays again (net amounts)
            when p.reversals > 0 and p.answers > p.reversals then 'reversed and re-paid'
            when p.reversals > 0 then 'reversed'
            when p.paid + p.patient_responsibility = 0 then 'denied'
            when p.paid + p.patient_responsibility < l.expected_amount - (select amount from tolerance) then 'underpaid'
            when p.patient_responsibility > 0 then 'paid with patient responsibility'
            else 'paid'
        end as payment_status,
        -- no answer yet: days since the claim was sent (the close), else since the month ended
        case when p.claim_line_id is null
            then date_diff('day', coalesce(s.first_submitted_on, last_day(l.service_month)), r.as_of) end
            as days_without_answer
    from lines as l
    cross join run_parameters as r
    left join paid as p using (claim_line_id)
    left join sent as s using (claim_id)
)

select * from final
