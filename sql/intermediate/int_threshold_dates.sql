-- purpose: the day each billed month reached its base code's minute floor (for the
--          threshold_met date-of-service policy and for audits)
-- grain: enrollment_id, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_time_entries_classified, int_patient_months, int_billing_codes
with counted as (
    -- attributed to the patient-month's enrollment (a re-enrolled month merges both stays)
    select m.enrollment_id, e.service_month, e.service_date, e.start_time, e.entry_id, e.counted_minutes as minutes
    from int_time_entries_classified as e
    inner join int_patient_months as m using (patient_id, program, service_month)
    where e.counted_minutes > 0
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
