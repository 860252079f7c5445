-- purpose: the payments page's totals (docs/claims-and-remittances.md): claim lines of closed months
--          against what came back, for all payers and months, per service month and per payer:
--          paid, patient responsibility, denied, underpaid and unanswered dollars (and unanswered lines), and the collection
--          rate (paid + patient responsibility) / expected over the answered lines; no patient identifiers
-- grain: grouping ('total', 'month', 'payer') and its key (service_month or payer_id)
-- upstream: rpt_collection_rate
with by_payer_month as (
    select * from rpt_collection_rate
),

final as (
    select
        case
            when grouping(service_month) = 0 then 'month'
            when grouping(payer_id) = 0 then 'payer'
            else 'total'
        end as grouping_level,
        service_month,
        payer_id,
        sum(claim_lines)::bigint as claim_lines,
        sum(answered_lines)::bigint as answered_lines,
        (sum(claim_lines) - sum(answered_lines))::bigint as unanswered_lines,
        sum(denied_lines)::bigint as denied_lines,
        coalesce(sum(expected_amount), 0)::decimal(14, 2) as expected_amount,
        coalesce(sum(paid), 0)::decimal(14, 2) as paid,
        coalesce(sum(patient_responsibility), 0)::decimal(14, 2) as patient_responsibility,
        coalesce(sum(denied_expected_amount), 0)::decimal(14, 2) as denied_expected_amount,
        coalesce(sum(underpaid_amount), 0)::decimal(14, 2) as underpaid_amount,
        coalesce(sum(unanswered_expected_amount), 0)::decimal(14, 2) as unanswered_expected_amount,
        round(sum(answered_collected) / nullif(sum(answered_expected_amount), 0), 4) as collection_rate
    from by_payer_month
    group by grouping sets ((service_month), (payer_id), ())
)

select * from final
