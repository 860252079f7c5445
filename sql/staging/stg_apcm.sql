-- purpose: advanced primary care management (APCM) base codes the practice bills, one per patient-month
--          (G0556 / G0557 / G0558) with the practitioner who bills it; latest delivery per patient-month;
--          optional extract (docs/extract-format.md): without it no month is an APCM month
-- grain: patient_id, service_month
-- upstream: raw_apcm
with source as (
    select * from raw_apcm
),

final as (
    select
        patient_id,
        date_trunc('month', service_month)::date as service_month,
        upper(trim(apcm_code)) as apcm_code,
        billing_provider_id as apcm_provider_id
    from source
    qualify row_number() over (
        partition by patient_id, date_trunc('month', service_month) order by delivery_seq desc, source_row desc
    ) = 1
)

select * from final
