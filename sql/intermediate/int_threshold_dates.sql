-- purpose: the day each billed month reached its base code's minute floor (for the
--          threshold_met date-of-service policy and for audits)
-- grain: enrollment_id, service_month
-- upstream: int_time_entries_classified, int_billing_codes
with counted as (
    select enrollment_id, service_month, service_date, start_time, entry_id, minutes
    from int_time_entries_classified
    where is_counted
),

running as (
    select
        *,
        sum(minutes) over (
            partition by enrollment_id, service_month
            order by service_date, start_time nulls last, entry_id
            rows between unbounded preceding and current row
        ) as cumulative_minutes
    from counted
),

base_codes as (
    select enrollment_id, service_month, code, min_minutes
    from int_billing_codes
    where scenario = 'actual' and kind = 'base'
),

final as (
    select
        b.enrollment_id,
        b.service_month,
        b.code as base_code,
        min(r.service_date) as threshold_met_on
    from base_codes as b
    inner join running as r
        on r.enrollment_id = b.enrollment_id
        and r.service_month = b.service_month
        and r.cumulative_minutes >= b.min_minutes
    group by all
)

select * from final
