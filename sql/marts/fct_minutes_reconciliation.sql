-- purpose: every minute ingested, accounted for: counted, excluded with a reason, or quarantined
--          with a reason (quarantined rows whose minutes could not be read count as 0 minutes)
-- grain: status, reason
-- upstream: int_time_entries_classified, quarantine
with entries as (
    select * from int_time_entries_classified
),

-- an entry counts, is excluded whole (one reason), or counts in part with its overlap excluded
classified as (
    select 'counted' as status, '' as reason, count(*) as entries, sum(counted_minutes)::bigint as minutes
    from entries
    where counted_minutes > 0
    union all
    select 'excluded', exclusion_reason, count(*), sum(minutes)::bigint
    from entries
    where exclusion_reason is not null
    group by all
    union all
    select 'excluded', overlap_reason, count(*) filter (where counted_minutes = 0), sum(overlap_minutes)::bigint
    from entries
    where exclusion_reason is null and overlap_minutes > 0
    group by all
),

quarantined as (
    select
        'quarantined' as status,
        reason,
        count(*) as entries,
        -- minutes that read as a positive whole number; others (0, -5, 'abc', 7.5) count as 0
        coalesce(sum(case
            when regexp_full_match(trim(json_extract_string(record, '$.minutes')), '[0-9]+')
                then trim(json_extract_string(record, '$.minutes'))::integer
        end), 0)::bigint as minutes
    from quarantine
    where table_name = 'time_entries'
    group by all
),

final as (
    select * from classified
    union all
    select * from quarantined
)

select * from final
order by status, minutes desc
