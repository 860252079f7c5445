-- purpose: every assumption behind the ROI numbers, printed on the ROI page as it is computed: the
--          care managers' program share of cost (settings), how the open month is counted, what
--          counts as cost and revenue and which months are left out for incomplete data
-- grain: assumption (one row each, in display order)
-- upstream: ref_settings, run_parameters, fct_month_completeness
with params as (
    select
        as_of,
        day(as_of) as days_elapsed,
        day(last_day(as_of)) as days_in_month,
        (select max(try_cast(value as double)) from ref_settings where setting = 'care_manager_cocm_share') as share
    from run_parameters
),

final as (
    select 1 as sort_order, 'Care manager cost' as assumption,
        'annual cost x FTE / 12 x a program share of ' || round(100 * share)::integer
        || '% (the share of their time the outreach plan also assumes)' as value,
        'staff extract (annual_cost, fte); settings.csv care_manager_cocm_share' as source
    from params
    union all
    select 2, 'Other program costs', 'as listed per facility and month (consultant, software, training ...)',
        'program_costs extract'
    union all
    select 3, 'Open month', strftime(as_of, '%Y-%m') || ' is month to date: revenue so far against costs prorated to '
        || days_elapsed || ' of ' || days_in_month || ' days; left out of the closed-month totals',
        'as-of date ' || strftime(as_of, '%Y-%m-%d')
    from params
    union all
    select 4, 'Revenue', 'expected payment for the codes each patient-month earns at the fee schedule, before denials',
        'fee_schedule.csv (expected amount of each patient-month)'
    union all
    select 5, 'Months with incomplete data',
        coalesce((select string_agg(strftime(service_month, '%Y-%m') || ' (' || incomplete_reasons || ')', '; '
                  order by service_month) from fct_month_completeness where is_incomplete)
                 || ': marked on the chart, left out of the totals and break-even', 'none'),
        'fct_month_completeness (settings.csv incomplete_month_*)'
    union all
    select 6, 'Not counted', 'billing practitioners'' and therapists'' salaries, overhead, patient coinsurance not collected',
        'by design'
)

select * from final
order by sort_order
