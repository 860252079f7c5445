-- purpose: validated rating scales (PHQ-9, GAD-7 ...) given to patients: measurement-based care
-- grain: patient_id, assessment_date, instrument
-- upstream: raw_assessments
with source as (
    select * from raw_assessments
),

final as (
    select
        patient_id,
        assessment_date,
        instrument,
        score
    from source
    qualify row_number() over (
        partition by patient_id, assessment_date, instrument order by delivery_seq desc, source_row desc
    ) = 1
)

select * from final
