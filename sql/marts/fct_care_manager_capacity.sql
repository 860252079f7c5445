-- purpose: each care manager's remaining capacity in the open month, in minutes: fte x business
--          days (Monday to Friday) left after the as-of date until the month ends x
--          care_manager_hours_per_day x 60 x care_manager_cocm_share (settings), rounded down
-- grain: care_manager_id (roster staff with role care_manager)
-- upstream: stg_staff, ref_settings, run_parameters
with params as (
    select as_of, date_trunc('month', as_of)::date as open_month, last_day(as_of) as month_end
    from run_parameters
),

settings as (
    select
        max(try_cast(value as double)) filter (where setting = 'care_manager_hours_per_day') as hours_per_day,
        max(try_cast(value as double)) filter (where setting = 'care_manager_cocm_share') as cocm_share
    from ref_settings
    where setting in ('care_manager_hours_per_day', 'care_manager_cocm_share')
),

calendar as (
    select unnest(generate_series((as_of + 1)::timestamp, month_end::timestamp, interval 1 day))::date as day
    from params
),

business_days as (
    select count(*)::integer as business_days_left
    from calendar
    where isodow(day) <= 5
),

care_managers as (
    select staff_id as care_manager_id, name as care_manager_name, facility_id, coalesce(fte, 1) as fte
    from stg_staff
    where role = 'care_manager'
),

final as (
    select
        c.care_manager_id,
        c.care_manager_name,
        c.facility_id,
        p.open_month as service_month,
        c.fte,
        b.business_days_left,
        s.hours_per_day,
        s.cocm_share,
        floor(c.fte * b.business_days_left * s.hours_per_day * 60 * s.cocm_share)::integer as capacity_minutes
    from care_managers as c
    cross join params as p
    cross join business_days as b
    cross join settings as s
)

select * from final
order by care_manager_id
