-- purpose: revenue left on the table by reason (minutes short, consent, review, late entries...)
-- grain: patient, program, service month, reason
-- upstream: fct_revenue_gap
select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
       reason, minutes, dollars::decimal(12, 2) as dollars, countable_minutes, current_codes, care_manager_id
from fct_revenue_gap order by service_month, dollars desc, patient_id, program, reason
