-- purpose: denied and adjusted dollars by payer, service month, adjustment group and reason code
--          (CARC) in plain words, with the remark codes (RARC) that came with them; contractual
--          write-offs on paid lines (CO-45) are listed too, kind tells them apart; claim-level
--          adjustments are counted once (their share per line, int_remittance_line_adjustments)
-- grain: payer_id, service_month, group_code, reason_code, kind
-- upstream: int_remittance_line_adjustments, fct_remittance_lines, fct_claim_payments,
--           ref_adjustment_groups, ref_carc_codes, ref_rarc_codes
with adjustments as (
    select a.*, l.claim_line_id, l.payer_id, l.rarc_codes
    from int_remittance_line_adjustments as a
    inner join fct_remittance_lines as l using (payer_identifier, trace_number, claim_index, line_index)
),

final as (
    select
        a.payer_id,
        p.service_month,
        a.group_code,
        g.description as group_description,
        a.reason_code,
        c.description as reason_description,
        case when p.payment_status = 'denied' then 'denial' else 'adjustment' end as kind,
        count(distinct a.claim_line_id) as claim_lines,
        sum(a.amount)::decimal(14, 2) as amount,
        string_agg(distinct a.rarc_codes, ',' order by a.rarc_codes) as rarc_codes,
        string_agg(distinct r.description, ' | ' order by r.description) as rarc_descriptions
    from adjustments as a
    left join fct_claim_payments as p using (claim_line_id)
    left join ref_adjustment_groups as g using (group_code)
    left join ref_carc_codes as c on c.code = a.reason_code
    left join ref_rarc_codes as r on list_contains(string_split(a.rarc_codes, ','), r.code)
    group by all
)

select * from final
