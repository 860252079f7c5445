-- purpose: share of each extract table's delivered rows that is quarantined, against the setting
--          max_quarantine_share, with the file and column behind most of it (bhi run exits 1 when a
--          table is over the limit: a whole file quarantined is a broken extract, not a few typos);
--          tables with fewer delivered rows than quarantine_share_min_rows are never over it
-- grain: table_name (tables with at least one delivered row)
-- upstream: ingest_files, quarantine, ref_settings
with setting as (
    select
        max(try_cast(value as double)) filter (where setting = 'max_quarantine_share') as max_share,
        max(try_cast(value as bigint)) filter (where setting = 'quarantine_share_min_rows') as min_rows
    from ref_settings
),

delivered as (
    select table_name, sum(rows_read)::bigint as rows_delivered
    from ingest_files
    where status = 'loaded'
    group by table_name
    having sum(rows_read) > 0
),

quarantined as (
    select table_name, count(*) as rows_quarantined
    from quarantine
    group by table_name
),

-- each quarantined row counts once for every column at fault (a malformed row for none)
by_file_column as (
    select
        table_name,
        source_file,
        coalesce(nullif(column_name, ''), '(malformed row)') as column_name,
        count(*) as rows_quarantined
    from (select table_name, source_file, unnest(string_split(columns, ',')) as column_name from quarantine)
    group by all
),

top as (
    select table_name, source_file as top_file, column_name as top_column, rows_quarantined as top_rows
    from by_file_column
    qualify row_number() over (
        partition by table_name order by rows_quarantined desc, source_file, column_name
    ) = 1
),

final as (
    select
        d.table_name,
        d.rows_delivered,
        coalesce(q.rows_quarantined, 0) as rows_quarantined,
        round(coalesce(q.rows_quarantined, 0) / d.rows_delivered, 4) as quarantined_share,
        s.max_share,
        d.rows_delivered >= s.min_rows and coalesce(q.rows_quarantined, 0) > s.max_share * d.rows_delivered
            as over_limit,
        t.top_file,
        t.top_column,
        t.top_rows
    from delivered as d
    cross join setting as s
    left join quarantined as q using (table_name)
    left join top as t using (table_name)
)

select * from final
order by table_name
