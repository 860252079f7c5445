-- purpose: billable claim lines of closed months, one row per code, with units, modifiers, date of
--          service and money (an unpriced line is kept, price_status says so)
-- grain: claim line (facility, patient, program, service month, code)
-- upstream: fct_claims
select facility_id, patient_id, payer_id, strftime(service_month, '%Y-%m') as service_month, code,
       units, modifiers, date_of_service, unit_amount::decimal(12, 2) as unit_amount,
       expected_amount::decimal(12, 2) as expected_amount, expected_collection::decimal(12, 2) as expected_collection,
       payer_share::decimal(12, 2) as payer_share, patient_share::decimal(12, 2) as patient_share, price_status,
       program, rule_set, month_type, countable_minutes, billing_provider_id, claim_line_id
from fct_claims order by service_month, facility_id, patient_id, program, code
