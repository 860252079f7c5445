-- purpose: claim lines with no fee-schedule rate in force: what to load before the month is billed
-- grain: claim line
-- upstream: fct_unpriced_claim_lines
select payer_id, code, strftime(service_month, '%Y-%m') as service_month, units, reason, message,
       facility_id, patient_id, program, claim_line_id
from fct_unpriced_claim_lines order by service_month, payer_id, code, claim_line_id
