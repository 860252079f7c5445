-- purpose: each care manager's ranked list of whom to call this month, and whether they fit in the plan's
--          minutes
-- grain: care manager, rank
-- upstream: fct_outreach_plan
select care_manager_id, rank, patient_id, payer_id, program, countable_minutes, next_code,
       next_threshold_minutes, minutes_needed, dollars_gained::decimal(12, 2) as dollars_gained, dollars_per_minute,
       cumulative_minutes, in_plan
from fct_outreach_plan order by care_manager_id nulls last, rank
