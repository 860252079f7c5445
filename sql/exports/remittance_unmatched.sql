-- purpose: 835 answers that pay no claim line we sent, or do not balance, with the reason and the
--          dollars (the payments page and the run summary count the same rows)
-- grain: payer_identifier, trace_number, claim_index, line_index
-- upstream: fct_remittance_unmatched
select payer_identifier, trace_number, claim_index, line_index, claim_id, claim_status, payer_id, payment_date,
       payer_claim_control_number, code, original_code, line_control_number, service_date,
       charge::decimal(12, 2) as charge, paid::decimal(12, 2) as paid,
       patient_responsibility::decimal(12, 2) as patient_responsibility, unmatched, unbalanced, reason, source_file
from fct_remittance_unmatched order by payment_date, payer_identifier, trace_number, claim_index, line_index
