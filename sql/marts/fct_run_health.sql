-- purpose: the health of this run in one row, shown on every dashboard page and in the run summary:
--          as-of date, the newest time entry and whether the extract is stale (more than
--          stale_extract_days before the as-of date: `bhi run` exits 3 unless --allow-stale), files
--          this load rejected, rows quarantined, field warnings, unpriced claim lines and the months
--          whose data is incomplete (fct_month_completeness)
-- grain: one row
-- upstream: run_parameters, ref_settings, stg_time_entries, ingest_errors, quarantine, field_warnings,
--           fct_unpriced_claim_lines, fct_month_completeness, fct_run_health_sources
with params as (
    select
        r.as_of,
        date_trunc('month', r.as_of)::date as open_month,
        (select max(try_cast(value as integer)) from ref_settings where setting = 'stale_extract_days') as stale_extract_days
    from run_parameters as r
),

newest as (
    select max(service_date) as newest_entry_date
    from stg_time_entries
    where version_rank = 1 and service_date <= (select as_of from params)
),

final as (
    select
        p.as_of,
        p.open_month,
        n.newest_entry_date,
        (p.as_of - n.newest_entry_date)::integer as days_since_newest_entry,
        p.stale_extract_days,
        -- no time entry at all is stale too
        coalesce((p.as_of - n.newest_entry_date) > p.stale_extract_days, true) as is_stale,
        (select count(*) from fct_run_health_sources where is_stale)::bigint as stale_sources,
        (select count(*) from ingest_errors)::bigint as files_rejected,
        (select string_agg(source_file, ', ' order by source_file) from ingest_errors) as rejected_file_names,
        (select count(*) from quarantine)::bigint as rows_quarantined,
        -- bad values in columns billing does not need: the row loaded with the column empty
        (select count(*) from field_warnings)::bigint as field_warnings,
        (select count(*) from fct_unpriced_claim_lines)::bigint as unpriced_lines,
        (select count(*) from fct_month_completeness where is_incomplete)::bigint as incomplete_months,
        (select string_agg(strftime(service_month, '%Y-%m'), ', ' order by service_month)
         from fct_month_completeness where is_incomplete) as incomplete_month_list
    from params as p
    cross join newest as n
)

select * from final
