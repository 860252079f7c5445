-- purpose: time entries, typed and ranked by delivery: the latest delivery of an entry_id wins (a
--          latest delivery with deleted = true voids the entry; earlier versions stay as history)
-- grain: one row per delivered version of a time entry (version_rank 1 is the live version, 2 superseded)
-- incremental: entry_id (a nightly run re-ranks only the versions of the entry ids in scope_entries)
-- upstream: raw_time_entries
with source as (
    select * from raw_time_entries
),

renamed as (
    select
        entry_id,
        patient_id,
        staff_id,
        service_date,
        date_trunc('month', service_date)::date as service_month,
        minutes,
        activity,
        program as entry_program,
        start_time,
        end_time,
        documented_at,
        encounter_id,
        coalesce(deleted, false) as is_deleted,
        source_file,
        source_row,
        delivery_seq
    from source
),

-- the latest delivery of each entry_id (a group-by: cheaper than ranking every row)
latest as (
    select entry_id, max(delivery_seq * 10000000000 + source_row) as version_key
    from renamed
    group by entry_id
),

final as (
    select
        r.*,
        -- 1 = the live version, 2 = superseded by a later delivery
        case when l.version_key = r.delivery_seq * 10000000000 + r.source_row then 1 else 2 end as version_rank
    from renamed as r
    inner join latest as l using (entry_id)
)

select * from final
