-- purpose: denied claim lines that can be corrected and resent (a reason code marked correctable in
--          ref_carc_codes), with the reason in plain words and what to do; a corrected claim goes out
--          at the next close as a replacement (frequency code 7)
-- grain: claim_line_id
-- upstream: fct_claim_payments, ref_carc_codes
with denied as (
    select p.*, unnest(string_split(p.carc_codes, ',')) as carc
    from fct_claim_payments as p
    where p.payment_status = 'denied'
),

final as (
    select
        d.claim_line_id,
        -- one fct_claim_payments row split by reason code: any_value is that row's value
        any_value(d.claim_id) as claim_id,
        any_value(d.patient_id) as patient_id,
        any_value(d.payer_id) as payer_id,
        any_value(d.service_month) as service_month,
        any_value(d.code) as code,
        any_value(d.expected_amount) as expected_amount,
        any_value(d.rarc_codes) as rarc_codes,
        string_agg(distinct d.carc, ',' order by d.carc) as carc_codes,
        string_agg(distinct c.description, ' | ' order by c.description) as reasons,
        string_agg(distinct c.action, ' | ' order by c.action) as actions
    from denied as d
    inner join ref_carc_codes as c on c.code = split_part(d.carc, '-', 2) and lower(c.correctable) = 'true'
    group by d.claim_line_id
)

select * from final
