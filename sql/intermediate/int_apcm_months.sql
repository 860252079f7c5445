-- purpose: each enrolled patient-month with an APCM base code (stg_apcm) and whether the base is billed by
--          the enrollment's billing practitioner (the APCM behavioral-health add-ons G0568 / G0569 / G0570
--          are billed only then: CY 2026 PFS final rule, CMS-1832-F) and whether the payer has add-on rows
--          (ref_apcm_add_ons) in force in the month; apcm_status says which, for the evidence trail
-- grain: enrollment_id, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_patient_months, stg_apcm, ref_apcm_add_ons
with months as (
    select enrollment_id, patient_id, service_month, payer_id, billing_provider_id from int_patient_months
),

payer_rows as (
    select distinct m.enrollment_id, m.service_month
    from months as m
    inner join ref_apcm_add_ons as x
        on x.payer_id = m.payer_id
        and m.service_month >= x.effective_from
        and (x.effective_to is null or m.service_month <= x.effective_to)
),

final as (
    select
        m.enrollment_id,
        m.service_month,
        m.patient_id,
        a.apcm_code,
        a.apcm_provider_id,
        a.apcm_provider_id = m.billing_provider_id as same_practitioner,
        p.enrollment_id is not null as payer_has_add_ons,
        -- add_on: standalone codes are billed as the add-ons; other_practitioner: the base is billed by
        -- another practitioner, so no add-on (it would be denied) and the standalone codes stay;
        -- no_payer_rows: the payer has no add-on rows in force in the month (standalone codes stay)
        case
            when a.apcm_provider_id <> m.billing_provider_id then 'other_practitioner'
            when p.enrollment_id is null then 'no_payer_rows'
            else 'add_on'
        end as apcm_status
    from months as m
    inner join stg_apcm as a using (patient_id, service_month)
    left join payer_rows as p using (enrollment_id, service_month)
)

select * from final
