-- purpose: the month-to-date worklist: every enrolled patient in the open month, minutes so far,
--          the next code within reach, minutes still needed, days left, dollars gained, blockers
-- grain: enrollment_id (open month only)
-- upstream: fct_patient_months, run_parameters
with open_month as (
    select * from fct_patient_months
    where month_status = 'open'
),

params as (
    select as_of from run_parameters
),

final as (
    select
        facility_id,
        patient_id,
        payer_id,
        program,
        care_manager_id,
        month_type,
        countable_minutes,
        current_codes,
        current_amount,
        next_codes as next_code,
        next_target_minutes as next_threshold_minutes,
        minutes_needed,
        -- the only day-dependent column: computed here, so patient-month models change by month only
        date_diff('day', (select as_of from params), last_day(service_month))::integer as days_left,
        dollars_gained,
        concat_ws('; ',
            case when not consent_ok then 'missing consent' end,
            case when not psych_review_ok then 'no psychiatric review yet' end,
            case when not initiating_visit_ok then 'no initiating visit' end,
            case when not diagnosis_ok then 'no behavioral health diagnosis' end,
            case when measurement_is_gate and not measurement_ok then 'no validated rating scale' end
        ) as blockers,
        warnings,
        enrollment_id,
        service_month
    from open_month
)

select * from final
order by dollars_gained desc nulls last, minutes_needed, patient_id
