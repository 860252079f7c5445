-- purpose: the biller's denial worklist: every denied claim line (nothing allowed: payment status
--          'denied', so its count is the payments page's denied-lines card) with our claim id, the
--          payer's claim control number (CLP07), the reason codes (CARC, group-code) and remark codes
--          (RARC) with their text, what to do (ref_carc_codes action), whether resending a corrected
--          claim can fix it (ref_carc_codes correctable: the corrected claim goes out at the next close
--          as a replacement, frequency code 7), the amount and the age of the denial; the patient's
--          name (patients extract) for the biller who calls or looks the patient up
-- grain: claim_line_id
-- upstream: fct_claim_payments, ref_carc_codes, ref_rarc_codes, run_parameters, stg_patients
with denied as (
    select * from fct_claim_payments
    where payment_status = 'denied'
),

carcs as (
    select claim_line_id, unnest(string_split(carc_codes, ',')) as carc
    from denied
),

reasons as (
    select
        a.claim_line_id,
        string_agg(distinct a.carc, ',' order by a.carc) as carc_codes,
        string_agg(distinct c.description, ' | ' order by c.description) as reasons,
        string_agg(distinct c.action, ' | ' order by c.action) as actions,
        coalesce(bool_or(lower(c.correctable) = 'true'), false) as correctable
    from carcs as a
    left join ref_carc_codes as c on c.code = split_part(a.carc, '-', 2)
    group by a.claim_line_id
),

rarcs as (
    select d.claim_line_id, string_agg(distinct r.description, ' | ' order by r.description) as rarc_descriptions
    from (select claim_line_id, unnest(string_split(rarc_codes, ',')) as rarc from denied) as d
    inner join ref_rarc_codes as r on r.code = d.rarc
    group by d.claim_line_id
),

final as (
    select
        d.claim_line_id,
        d.claim_id,
        d.payer_claim_control_number,
        d.patient_id,
        nullif(concat_ws(', ', n.last_name, n.first_name), '') as patient_name,
        d.payer_id,
        d.facility_id,
        d.service_month,
        d.code,
        d.charge,
        d.expected_amount,
        r.carc_codes,
        r.reasons,
        d.rarc_codes,
        x.rarc_descriptions,
        coalesce(r.actions, 'Read the payer''s remittance advice (no reason code came with the denial)') as actions,
        coalesce(r.correctable, false) as correctable,
        d.last_payment_date as denied_on,
        date_diff('day', d.last_payment_date, p.as_of) as days_since_denial
    from denied as d
    cross join run_parameters as p
    left join reasons as r using (claim_line_id)
    left join rarcs as x using (claim_line_id)
    left join stg_patients as n on n.patient_id = d.patient_id
)

select * from final
