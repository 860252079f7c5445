-- purpose: claim lines added, changed or removed since the last published run, and the entries delivered
--          since
-- grain: claim line change
-- upstream: fct_claim_changes
select change, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month, code,
       units_before, units_after, amount_before::decimal(12, 2) as amount_before,
       amount_after::decimal(12, 2) as amount_after, amount_difference::decimal(12, 2) as amount_difference,
       date_of_service_before, date_of_service_after, modifiers_before, modifiers_after,
       entries_delivered_this_run, claim_line_id
from fct_claim_changes order by service_month, patient_id, program, code
