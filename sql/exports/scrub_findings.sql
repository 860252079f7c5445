-- purpose: claim lines of closed months the claim scrub fails (NCCI PTP / MUE, add-on without its primary,
--          APCM add-on or standalone code): each line with the edit that failed it and the claim it holds
--          back from the 837P; fix the coding (or add the modifier the edit allows) and close the month again
-- grain: claim line, edit, other code
-- upstream: fct_claim_scrub_findings, fct_x12_claim_lines
select strftime(f.service_month, '%Y-%m') as service_month, f.payer_id, f.patient_id, f.program, f.code, f.units,
       f.modifiers, strftime(f.date_of_service, '%Y-%m-%d') as date_of_service, f.billing_provider_id, f.edit,
       f.other_code, f.detail, x.claim_id, f.claim_line_id
from fct_claim_scrub_findings as f
left join fct_x12_claim_lines as x using (claim_line_id)
order by service_month, f.payer_id, f.patient_id, f.code, f.edit, f.other_code
