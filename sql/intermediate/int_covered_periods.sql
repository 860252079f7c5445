-- purpose: the covered period of each facility: the first month the extracts cover. Stated by the
--          facilities extract (covered_from), else derived from the bulk of the data: the first month
--          holding at least covered_period_min_share_of_busiest_month (settings.csv) of the entries
--          of the facility's busiest month. A stray entry dated a year early (a typo, a 1900-01-01
--          default) does not move it; entries before it are excluded as before_covered_period
--          (int_time_entries_classified) and int_episodes starts every enrollment's months there.
--          An entry belongs to the facility of its patient's latest enrollment.
-- grain: facility_id (facilities with an enrollment)
-- upstream: stg_time_entries, stg_enrollments, stg_facilities, ref_settings, run_parameters
with params as (
    select
        as_of,
        date_trunc('month', as_of)::date as open_month,
        (select max(value)::double from ref_settings where setting = 'covered_period_min_share_of_busiest_month')
            as min_share
    from run_parameters
),

-- the latest enrollment's facility; two enrollments on one day: the program last in name order, the
-- enrollment int_time_entries_classified matches (arg_max by enrolled_on alone took either, by row order)
patient_facilities as (
    select patient_id, arg_max(facility_id, (enrolled_on, program)) as facility_id
    from stg_enrollments
    group by all
),

facilities as (
    select distinct facility_id from stg_enrollments
),

-- live entries up to the as-of date (entries after it are excluded anyway)
monthly as (
    select f.facility_id, t.service_month, count(*) as entries
    from stg_time_entries as t
    inner join patient_facilities as f using (patient_id)
    where t.version_rank = 1 and not t.is_deleted and t.service_date <= (select as_of from params)
    group by all
),

busiest as (
    select facility_id, max(entries) as busiest_month_entries
    from monthly
    group by all
),

derived as (
    select m.facility_id, min(m.service_month) as derived_from, any_value(b.busiest_month_entries) as busiest
    from monthly as m
    inner join busiest as b using (facility_id)
    where m.entries >= b.busiest_month_entries * (select min_share from params)
    group by all
),

final as (
    select
        f.facility_id,
        -- a stated covered_from wins; a facility without entries is covered from the open month
        coalesce(date_trunc('month', s.covered_from)::date, d.derived_from, p.open_month) as covered_from,
        case
            when s.covered_from is not null then 'facilities extract'
            when d.derived_from is not null then 'derived from the data'
            else 'no entries yet (open month)'
        end as covered_from_origin,
        d.derived_from,
        coalesce(d.busiest, 0)::bigint as busiest_month_entries
    from facilities as f
    cross join params as p
    left join derived as d using (facility_id)
    left join stg_facilities as s using (facility_id)
)

select * from final
