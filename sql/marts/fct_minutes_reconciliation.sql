-- purpose: every minute ingested, accounted for: counted, excluded with a reason, or quarantined
--          with a reason (quarantined rows whose minutes could not be read count as 0 minutes)
-- grain: status, reason
-- upstream: int_time_entries_classified, quarantine
with classified as (
    select
        case when is_counted then 'counted' else 'excluded' end as status,
        coalesce(exclusion_reason, '') as reason,
        count(*) as entries,
        sum(minutes)::bigint as minutes
    from int_time_entries_classified
    group by all
),

quarantined as (
    select
        'quarantined' as status,
        reason,
        count(*) as entries,
        coalesce(sum(try_cast(trim(json_extract_string(record, '$.minutes')) as integer)), 0)::bigint as minutes
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
