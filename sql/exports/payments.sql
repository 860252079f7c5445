-- purpose: every claim line of a closed month against what came back from the 835s: its payment
--          state (paid, paid with patient responsibility, underpaid, denied, reversed, reversed and
--          re-paid, no answer, not submitted), paid, patient responsibility, adjustments, contract
--          variance, reason and remark codes, the payer's claim control number and how it matched
-- grain: claim_line_id
-- upstream: fct_claim_payments
select claim_id, payer_claim_control_number, patient_id, payer_id, facility_id, strftime(service_month, '%Y-%m')
    as service_month, code, date_of_service, payment_status, charge::decimal(12, 2) as charge,
       expected_amount::decimal(12, 2) as expected_amount, paid, patient_responsibility, contractual_adjustment,
       other_adjustment, allowed_amount, contract_variance, carc_codes, rarc_codes, last_payment_date, reversals,
       matched_by, first_submitted_on, days_without_answer, claim_line_id
from fct_claim_payments order by service_month, payer_id, claim_id, code, claim_line_id
