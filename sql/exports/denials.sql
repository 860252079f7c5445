-- purpose: the biller's denial worklist: every denied claim line with our claim id, the payer's claim
--          control number, reason (CARC) and remark (RARC) codes with their text, what to do, whether
--          a corrected claim can fix it, the amount and the days since the denial
-- grain: claim_line_id
-- upstream: fct_denial_worklist
select claim_id, payer_claim_control_number, patient_id, patient_name, payer_id, strftime(service_month, '%Y-%m') as service_month,
       code, charge::decimal(12, 2) as charge, expected_amount::decimal(12, 2) as expected_amount, carc_codes,
       reasons, rarc_codes, rarc_descriptions, actions, correctable, denied_on, days_since_denial, claim_line_id
from fct_denial_worklist order by expected_amount desc, service_month, claim_id, code, claim_line_id
