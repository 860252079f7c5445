-- purpose: claims of closed months with no 835 answer yet: days since they were sent (or since the
--          month ended when no submission was recorded) and whether that is past remittance_aging_days
-- grain: claim_id
-- upstream: fct_remittance_aging
select claim_id, patient_id, payer_id, strftime(service_month, '%Y-%m') as service_month, codes,
       charge::decimal(12, 2) as charge, expected_amount::decimal(12, 2) as expected_amount, payment_status,
       first_submitted_on, days_without_answer, past_aging_limit
from fct_remittance_aging order by days_without_answer desc, claim_id
