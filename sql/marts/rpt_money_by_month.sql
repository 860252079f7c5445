-- purpose: leadership's money by service month, side by side: expected at the fee schedule,
--          submitted to payers, paid by payers, patient responsibility, denied, underpaid and
--          outstanding (no answer yet, or not sent; none of these for the open month: nothing is sent before the close), the payer collection rate (paid by payers /
--          expected over the answered lines: patient responsibility is billed to the patient, not
--          collected), cost, net and ROI; the open month's revenue, cost, net and ROI projected to the
--          month end at the month-to-date pace (marked projected; its left-on-the-table is not computed
--          until the month closes); incomplete months keep their reason so the pages draw a gap
-- grain: service_month
-- upstream: rpt_program_roi_monthly, fct_claim_payments
with roi as (
    select * from rpt_program_roi_monthly
),

lines as (
    select
        service_month,
        sum(expected_amount) filter (where payment_status <> 'not submitted') as submitted,
        sum(paid) as paid,
        sum(patient_responsibility) as patient_responsibility,
        sum(expected_amount) filter (where payment_status = 'denied') as denied,
        sum(-contract_variance) filter (where payment_status = 'underpaid') as underpaid,
        sum(expected_amount) filter (where payment_status in ('no answer', 'not submitted')) as outstanding,
        sum(expected_amount) filter (where payment_status in ('paid', 'underpaid', 'denied')) as answered_expected
    from fct_claim_payments
    group by all
),

final as (
    select
        r.service_month,
        r.month_status,
        r.is_incomplete,
        r.incomplete_reasons,
        round(r.expected_revenue, 2) as expected_revenue,
        case when r.month_status = 'closed' then round(coalesce(l.submitted, 0), 2)::double end as submitted,
        case when r.month_status = 'closed' then round(coalesce(l.paid, 0), 2)::double end as paid,
        case when r.month_status = 'closed' then round(coalesce(l.patient_responsibility, 0), 2)::double end as patient_responsibility,
        case when r.month_status = 'closed' then round(coalesce(l.denied, 0), 2)::double end as denied,
        case when r.month_status = 'closed' then round(coalesce(l.underpaid, 0), 2)::double end as underpaid,
        case when r.month_status = 'closed' then round(coalesce(l.outstanding, 0), 2)::double end as outstanding,
        round(l.paid / nullif(l.answered_expected, 0), 4)::double as payer_collection_rate,
        round(r.total_cost, 2) as total_cost,
        round(r.net, 2) as net,
        r.roi_pct,
        r.cumulative_net,
        case when r.month_status = 'open' then null else r.revenue_left_on_table end as revenue_left_on_table,
        r.billing_rate_pct,
        r.cost_share_of_month,
        case when r.month_status = 'open' and r.cost_share_of_month > 0
                then round(r.expected_revenue / r.cost_share_of_month, 2) end as projected_revenue,
        case when r.month_status = 'open' and r.cost_share_of_month > 0
                then round(r.total_cost / r.cost_share_of_month, 2) end as projected_cost
    from roi as r
    left join lines as l on r.service_month = l.service_month
)

select
    *,
    round(projected_revenue - projected_cost, 2) as projected_net,
    round(100 * (projected_revenue - projected_cost) / nullif(projected_cost, 0), 1) as projected_roi_pct
from final
order by service_month
