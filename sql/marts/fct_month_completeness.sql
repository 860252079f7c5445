-- purpose: is each service month's time-entry data complete enough to report? A month is incomplete
--          when (1) a time-entries file rejected by this load names the month in its file name
--          (YYYY-MM, YYYY_MM or YYYYMM), or, when the extract has a daily flow (the median month has
--          entries on at least incomplete_month_daily_flow_share of its business days), (2) it has a
--          run of at least incomplete_month_gap_business_days business days without a time entry, or
--          (3) its entries per business day are below incomplete_month_volume_share x the median
--          month's. The open month is judged from its first day to the as-of date. Pages and exports
--          mark such a month incomplete instead of showing it as a $0 month (docs/operations.md)
-- grain: service_month (every month from the first time entry's or rejected file's month to the as-of month)
-- upstream: stg_time_entries, ingest_errors, run_parameters, ref_settings
with params as (
    select as_of, date_trunc('month', as_of)::date as open_month from run_parameters
),

settings as (
    select
        max(try_cast(value as integer)) filter (where setting = 'incomplete_month_gap_business_days') as gap_days,
        max(try_cast(value as double)) filter (where setting = 'incomplete_month_volume_share') as volume_share,
        max(try_cast(value as double)) filter (where setting = 'incomplete_month_daily_flow_share') as flow_share
    from ref_settings
),

entries as (
    select service_date, count(*) as entries
    from stg_time_entries
    where version_rank = 1
      and service_date <= (select as_of from params)
    group by all
),

rejected as (
    select
        source_file,
        try_strptime(
            regexp_extract(source_file, '(20[0-9]{2})[-_]?(0[1-9]|1[0-2])', 1)
            || '-' || regexp_extract(source_file, '(20[0-9]{2})[-_]?(0[1-9]|1[0-2])', 2) || '-01',
            '%Y-%m-%d'
        )::date as service_month
    from ingest_errors
    where table_name = 'time_entries'
),

bounds as (
    select
        least(
            coalesce((select min(date_trunc('month', service_date))::date from entries), p.open_month),
            coalesce((select min(service_month) from rejected), p.open_month),
            p.open_month
        ) as first_month,
        p.open_month,
        p.as_of
    from params as p
),

months as (
    select
        unnest(generate_series(first_month::timestamp, open_month::timestamp, interval 1 month))::date as service_month
    from bounds
),

days as (
    select
        m.service_month,
        unnest(generate_series(
            m.service_month::timestamp, least(last_day(m.service_month), b.as_of)::timestamp, interval 1 day
        ))::date as day
    from months as m
    cross join bounds as b
),

business_days as (
    select
        d.service_month,
        d.day,
        coalesce(e.entries, 0) as entries,
        -- a run of days without entries shares the count of days with entries before it
        count(e.entries) over (partition by d.service_month order by d.day) as run_id
    from days as d
    left join entries as e on e.service_date = d.day
    where isodow(d.day) <= 5
),

gaps as (
    select service_month, max(gap) as longest_gap_business_days
    from (
        select service_month, run_id, count(*) as gap
        from business_days
        where entries = 0
        group by all
    )
    group by all
),

per_month as (
    select
        m.service_month,
        count(b.day)::integer as business_days,
        count(b.day) filter (where b.entries > 0)::integer as business_days_with_entries,
        coalesce(sum(b.entries), 0)::bigint as business_day_entries,
        (select coalesce(sum(e.entries), 0) from entries as e
         where date_trunc('month', e.service_date) = m.service_month)::bigint as entries
    from months as m
    left join business_days as b using (service_month)
    group by all
),

rejected_per_month as (
    select service_month, count(*) as rejected_files, string_agg(source_file, ', ' order by source_file) as rejected_file_names
    from rejected
    where service_month is not null
    group by all
),

shaped as (
    select
        p.*,
        case when p.business_days > 0 then p.business_days_with_entries / p.business_days end as share_of_days_with_entries,
        case when p.business_days > 0 then p.business_day_entries / p.business_days end as entries_per_business_day,
        coalesce(g.longest_gap_business_days, 0)::integer as longest_gap_business_days,
        coalesce(r.rejected_files, 0)::integer as rejected_files,
        r.rejected_file_names
    from per_month as p
    left join gaps as g using (service_month)
    left join rejected_per_month as r using (service_month)
),

usual as (
    select
        median(share_of_days_with_entries) as usual_share_of_days_with_entries,
        median(entries_per_business_day) as usual_entries_per_business_day
    from shaped
    where business_days > 0
),

flagged as (
    select
        s.*,
        case when s.service_month = b.open_month then 'open' else 'closed' end as month_status,
        least(last_day(s.service_month), b.as_of) as judged_through,
        round(u.usual_entries_per_business_day, 1) as usual_entries_per_business_day,
        coalesce(u.usual_share_of_days_with_entries >= st.flow_share, false) as daily_flow,
        s.rejected_files > 0 as has_rejected_file,
        coalesce(u.usual_share_of_days_with_entries >= st.flow_share, false)
            and s.longest_gap_business_days >= st.gap_days as has_gap,
        coalesce(u.usual_share_of_days_with_entries >= st.flow_share, false)
            and s.business_days > 0
            and s.entries_per_business_day < st.volume_share * u.usual_entries_per_business_day as has_low_volume,
        st.gap_days,
        st.volume_share
    from shaped as s
    cross join bounds as b
    cross join usual as u
    cross join settings as st
),

final as (
    select
        service_month,
        month_status,
        judged_through,
        entries,
        business_days,
        business_days_with_entries,
        longest_gap_business_days,
        round(entries_per_business_day, 1) as entries_per_business_day,
        usual_entries_per_business_day,
        daily_flow,
        rejected_files,
        rejected_file_names,
        has_rejected_file or has_gap or has_low_volume as is_incomplete,
        nullif(concat_ws('; ',
            case when has_rejected_file then 'rejected file ' || rejected_file_names end,
            case when has_gap then 'no time entries for ' || longest_gap_business_days || ' business days' end,
            case when has_low_volume then entries_per_business_day::decimal(12, 1) || ' entries per business day vs '
                || usual_entries_per_business_day || ' usually' end
        ), '') as incomplete_reasons
    from flagged
)

select * from final
order by service_month
