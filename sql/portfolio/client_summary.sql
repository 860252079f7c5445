-- purpose: one client's headline figures for the billing company's portfolio page, read from the
--          warehouse of its last published run and published as Parquet (pipelines/clients/publish.py)
-- grain: one row (the warehouse's last published run)
-- upstream: rpt_run_summary, rpt_payments_summary, rpt_dashboard_headlines, x12_claim_submissions, publications
with

run_summary as (
    select * from rpt_run_summary
),

payments as (
    select
        claim_lines as answered_claim_lines_total,
        paid,
        denied_lines,
        denied_expected_amount,
        collection_rate
    from rpt_payments_summary
    where grouping_level = 'total'
),

headlines as (
    select dollars_reachable from rpt_dashboard_headlines
),

submitted as (
    select
        count(distinct claim_id) as claims_submitted,
        max(submitted_at) as last_submitted_at
    from x12_claim_submissions
),

published as (
    select
        run_id,
        published_at
    from publications
    qualify row_number() over (order by published_at desc) = 1
),

final as (
    select
        published.run_id,
        published.published_at,
        run_summary.as_of,
        run_summary.open_month,
        run_summary.entries_ingested,
        run_summary.claim_lines,
        run_summary.expected_revenue::decimal(14, 2) as expected,
        submitted.claims_submitted,
        submitted.last_submitted_at,
        coalesce(payments.paid, 0)::decimal(14, 2) as paid,
        coalesce(payments.denied_lines, 0) as denied_lines,
        coalesce(payments.denied_expected_amount, 0)::decimal(14, 2) as denied,
        run_summary.revenue_left_on_table::decimal(14, 2) as left_on_table,
        payments.collection_rate,
        coalesce(headlines.dollars_reachable, 0)::decimal(14, 2) as worklist_in_reach,
        run_summary.newest_entry_date,
        run_summary.days_since_newest_entry,
        run_summary.is_stale,
        run_summary.files_rejected,
        run_summary.rows_quarantined,
        run_summary.unpriced_lines,
        run_summary.incomplete_months,
        run_summary.quarantine_share_alert
    from run_summary
    cross join submitted
    left join payments on true
    left join headlines on true
    left join published on true
)

select * from final
