-- purpose: the open month's patients a few minutes short of the next billable code, with dollars within
--          reach and blockers
-- grain: patient, program (open month)
-- upstream: fct_near_threshold
select facility_id, patient_id, payer_id, program, care_manager_id, month_type, countable_minutes,
       current_codes, current_amount::decimal(12, 2) as current_amount, next_code, next_threshold_minutes,
       minutes_needed, days_left, dollars_gained::decimal(12, 2) as dollars_gained, blockers, warnings
from fct_near_threshold order by dollars_gained desc nulls last, minutes_needed, patient_id, program
