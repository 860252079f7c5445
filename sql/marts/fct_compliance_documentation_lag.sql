-- purpose: documentation lag per staff member and ISO week of service: live time entries (latest
--          delivery, service on or before the as-of date) documented more than
--          late_documentation_days (settings) after the service date are late; entries without a
--          documented_at date are counted apart
-- grain: staff_id, week_start (Monday of the ISO week of service_date)
-- upstream: int_time_entries_classified, ref_settings
with setting as (
    select try_cast(value as integer) as late_documentation_days
    from ref_settings
    where setting = 'late_documentation_days'
),

entries as (
    select
        e.staff_id,
        e.role,
        date_trunc('week', e.service_date)::date as week_start,
        strftime(e.service_date, '%G-W%V') as iso_week,
        e.minutes,
        date_diff('day', e.service_date, e.documented_at) as lag_days,
        s.late_documentation_days
    from int_time_entries_classified as e
    cross join setting as s
    where e.version_rank = 1 and e.exclusion_reason is distinct from 'after_as_of_date'
),

final as (
    select
        staff_id,
        any_value(role) as role,
        week_start,
        any_value(iso_week) as iso_week,
        any_value(late_documentation_days) as late_documentation_days,
        count(*) as entries,
        sum(minutes)::bigint as minutes,
        count(*) filter (where lag_days > late_documentation_days) as late_entries,
        coalesce(sum(minutes) filter (where lag_days > late_documentation_days), 0)::bigint as late_minutes,
        count(*) filter (where lag_days is null) as undated_entries,
        max(lag_days) as max_lag_days,
        round(avg(lag_days), 1) as avg_lag_days,
        case
            when sum(minutes) > 0
                then round(100.0 * coalesce(sum(minutes) filter (where lag_days > late_documentation_days), 0) / sum(minutes), 1)
        end as late_minutes_pct
    from entries
    group by staff_id, week_start
),

-- staff ranked by their late minutes over all weeks (the heatmap shows the top rows only)
ranked as (
    select
        *,
        dense_rank() over (order by staff_late_minutes desc, staff_id) as staff_late_rank
    from (select *, sum(late_minutes) over (partition by staff_id) as staff_late_minutes from final)
)

select * from ranked
order by week_start, staff_id
