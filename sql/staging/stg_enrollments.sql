-- purpose: program enrollments (the practitioner's referral), latest delivery per enrollment
-- grain: enrollment_id (patient_id, program, enrolled_on)
-- upstream: raw_enrollments
with source as (
    select * from raw_enrollments
),

final as (
    select
        patient_id || '|' || program || '|' || strftime(enrolled_on, '%Y-%m-%d') as enrollment_id,
        patient_id,
        program,
        payer_id,
        facility_id,
        billing_provider_id,
        enrolled_on,
        consent_on,
        discharged_on,
        -- why the patient left the program (goals_met, referred_on ...): outcomes only, not billing
        lower(nullif(trim(discharge_reason), '')) as discharge_reason,
        diagnosis_code,
        coalesce(non_duplicative_care_documented, false) as non_duplicative_care_documented
    from source
    qualify row_number() over (
        partition by patient_id, program, enrolled_on order by delivery_seq desc, source_row desc
    ) = 1
)

select * from final
