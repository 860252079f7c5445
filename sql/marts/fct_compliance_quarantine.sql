-- purpose: rows rejected at ingest, counted by extract table and reason (the detail is in
--          quarantine.csv)
-- grain: table_name, reason
-- upstream: quarantine
with final as (
    select
        table_name,
        reason,
        count(*) as rows_quarantined,
        count(distinct source_file) as files
    from quarantine
    group by table_name, reason
)

select * from final
order by rows_quarantined desc, table_name, reason
