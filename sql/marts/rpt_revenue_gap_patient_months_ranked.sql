-- purpose: the closed patient-months of rpt_revenue_gap_patient_months with their place by dollars
--          (dollar_rank 1 = most dollars left on the table; ties broken by month, newest first, then
--          facility, patient, program and payer), so the revenue-gap page reads its top rows by rank;
--          rebuilt in full each run (rpt_revenue_gap_patient_months stays incremental per patient)
-- grain: facility_id, patient_id, payer_id, program, service_month
-- upstream: rpt_revenue_gap_patient_months
select
    *,
    row_number() over (
        order by dollars desc, service_month desc, facility_id, patient_id, program, payer_id
    ) as dollar_rank
from rpt_revenue_gap_patient_months
