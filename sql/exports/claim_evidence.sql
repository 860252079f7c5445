-- purpose: the evidence trail behind every claim line and gap (gates, entries, thresholds); not a nightly file
--          (~30M rows at 10M entries stay in the warehouse): written one service month at a time, sorted, by
--          the close (month_end/claim_evidence_<YYYY-MM>.csv) and by `bhi evidence` (pipelines/outputs/exports.py,
--          evidence_month_query). item and detail echo delivered values: each is cut to 2000 characters
-- grain: patient, service month, program, evidence item
-- upstream: fct_claim_evidence
select patient_id, strftime(service_month, '%Y-%m') as service_month, program, section,
       left(item, 2000) as item, status, minutes, left(detail, 2000) as detail,
       sort_order
from fct_claim_evidence
