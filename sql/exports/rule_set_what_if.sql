-- purpose: codes and amounts under another payer rule set, for each patient-month
-- grain: patient, program, service month
-- upstream: fct_rule_set_what_if
select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
       countable_minutes, rule_set, codes, amount::decimal(12, 2) as amount, what_if_rule_set, what_if_codes,
       what_if_amount::decimal(12, 2) as what_if_amount, difference::decimal(12, 2) as difference
from fct_rule_set_what_if order by service_month, facility_id, patient_id, program
