-- purpose: every minute ingested, accounted for: counted, excluded with a reason, or quarantined
--          with a reason (quarantined rows whose minutes could not be read count as 0 minutes);
--          entries_with_field_warnings: how many of the line's entries loaded with a field warning
--          (an optional value that could not be read and was left empty, see field_warnings)
-- grain: status, reason
-- upstream: int_time_entries_classified, quarantine, field_warnings
with warned as (
    select distinct source_file, source_row, delivery_seq
    from field_warnings
    where table_name = 'time_entries'
),

entries as (
    select e.*, w.source_row is not null as has_field_warning
    from int_time_entries_classified as e
    left join warned as w using (source_file, source_row, delivery_seq)
),

-- an entry counts, is excluded whole (one reason), or counts in part with its overlap excluded
classified as (
    select 'counted' as status, '' as reason, count(*) as entries, sum(counted_minutes)::bigint as minutes,
           count(*) filter (where has_field_warning) as entries_with_field_warnings
    from entries
    where counted_minutes > 0
    union all
    select 'excluded', exclusion_reason, count(*), sum(minutes)::bigint, count(*) filter (where has_field_warning)
    from entries
    where exclusion_reason is not null
    group by all
    union all
    select 'excluded', overlap_reason, count(*) filter (where counted_minutes = 0), sum(overlap_minutes)::bigint,
           count(*) filter (where counted_minutes = 0 and has_field_warning)
    from entries
    where exclusion_reason is null and overlap_minutes > 0
    group by all
),

quarantined as (
    select
        'quarantined' as status,
        reason,
        count(*) as entries,
        -- minutes that read as a positive whole number that fits an integer; others (0, -5, 'abc',
        -- 7.5, 99999999999, a malformed row) count as 0
        coalesce(sum(case
            when regexp_full_match(trim(json_extract_string(record, '$.minutes')), '[0-9]+')
                then try_cast(trim(json_extract_string(record, '$.minutes')) as integer)
        end), 0)::bigint as minutes,
        0::bigint as entries_with_field_warnings
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
