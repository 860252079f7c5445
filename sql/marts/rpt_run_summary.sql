-- purpose: the headline numbers of this run (printed by `bhi run`, shown on the dashboard index)
-- grain: one row
-- upstream: run_parameters, ingest_files, quarantine, field_warnings, fct_quarantine_share,
--           fct_minutes_reconciliation, fct_claims, fct_revenue_gap, fct_unpriced_claim_lines, fct_run_health,
--           int_covered_periods, fct_claim_scrub_findings, rpt_remittance_summary
with params as (
    select as_of, date_trunc('month', as_of)::date as open_month from run_parameters
),

final as (
    select
        p.as_of,
        p.open_month,
        (select coalesce(sum(rows_read), 0)::bigint from ingest_files where table_name = 'time_entries' and status = 'loaded')
            as entries_ingested,
        (select count(*) from quarantine) as rows_quarantined,
        (select count(*) from field_warnings) as field_warnings,
        -- tables whose quarantined share is over max_quarantine_share (NULL: none); bhi run exits 1
        (
            select string_agg(
                table_name || ': ' || rows_quarantined || ' of ' || rows_delivered || ' rows quarantined ('
                || round(100 * quarantined_share, 1) || '%, over max_quarantine_share '
                || round(100 * max_share, 1) || '%); most in ' || top_file || ', column ' || top_column
                || ' (' || top_rows || ' rows)',
                '; ' order by table_name
            )
            from fct_quarantine_share
            where over_limit
        ) as quarantine_share_alert,
        (select coalesce(sum(minutes), 0)::bigint from fct_minutes_reconciliation) as minutes_ingested,
        (select coalesce(sum(minutes), 0)::bigint from fct_minutes_reconciliation where status = 'counted')
            as minutes_counted,
        (select coalesce(sum(minutes), 0)::bigint from fct_minutes_reconciliation where status = 'excluded')
            as minutes_excluded,
        (select coalesce(sum(minutes), 0)::bigint from fct_minutes_reconciliation where status = 'quarantined')
            as minutes_quarantined,
        (select count(*) from fct_claims) as claim_lines,
        (select count(*) from fct_unpriced_claim_lines) as unpriced_claim_lines,
        -- claim scrub (fct_claim_scrub_findings): lines failing an edit, held back from the 837P with their claim
        (select count(distinct claim_line_id) from fct_claim_scrub_findings) as scrub_failed_lines,
        (select count(*) from fct_claim_scrub_findings) as scrub_findings,
        round((select coalesce(sum(expected_amount), 0) from fct_claims), 2)::double as expected_revenue,
        round((select coalesce(sum(dollars), 0) from fct_revenue_gap), 2)::double as revenue_left_on_table,
        -- run health (fct_run_health): `bhi run` prints it and exits 3 on a stale extract
        h.newest_entry_date,
        h.days_since_newest_entry,
        h.stale_extract_days,
        h.is_stale,
        h.files_rejected,
        h.unpriced_lines,
        h.incomplete_months,
        h.incomplete_month_list,
        -- the covered period: 'covered from YYYY-MM' per group of facilities (int_covered_periods)
        (select string_agg(line, '; ' order by line) from (
            select 'covered from ' || strftime(covered_from, '%Y-%m')
                || ' (' || string_agg(facility_id, ', ' order by facility_id) || ')' as line
            from int_covered_periods group by covered_from
        )) as covered_period,
        (select coalesce(sum(minutes), 0)::bigint from fct_minutes_reconciliation where reason = 'before_covered_period')
            as minutes_before_covered_period,
        -- the 835 side (rpt_remittance_summary): `bhi run` prints it
        r.payments as remittance_payments,
        r.unbalanced_payments as remittance_unbalanced_payments,
        r.unbalanced_difference as remittance_unbalanced_difference,
        r.unmatched_lines as remittance_unmatched_lines,
        r.unmatched_paid as remittance_unmatched_paid,
        r.denied_lines as remittance_denied_lines
    from params as p
    cross join fct_run_health as h
    cross join rpt_remittance_summary as r
)

select * from final
