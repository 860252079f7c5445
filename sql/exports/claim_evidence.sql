-- purpose: the evidence trail behind every claim line and gap (gates, entries, thresholds); written one file
--          per service month, claim_evidence/<YYYY-MM>.csv, unordered (sorting ~30M rows at 10M entries costs
--          more than writing them; the month-end files are sorted). item and detail echo delivered values:
--          each is cut to 2000 characters
-- grain: patient, service month, program, evidence item
-- upstream: fct_claim_evidence
select patient_id, strftime(service_month, '%Y-%m') as service_month, program, section,
       left(item, 2000) as item, status, minutes, left(detail, 2000) as detail,
       sort_order
from fct_claim_evidence
