-- purpose: the coverage history of each enrollment: the payer in force from a date. Every delivered
--          version of an enrollment names its payer and, optionally, payer_from (the day that payer's
--          coverage starts; default the enrollment date). A re-delivery with a new payer and a
--          payer_from adds a coverage period and leaves the earlier months with the payer in force
--          then; a re-delivery without payer_from corrects the enrollment's payer from its start.
--          The payer of a month is the coverage in force on its last day of service (int_episodes).
-- grain: enrollment_id, payer_from (the latest delivery of each)
-- upstream: raw_enrollments
with source as (
    select * from raw_enrollments
),

final as (
    select
        patient_id || '|' || program || '|' || strftime(enrolled_on, '%Y-%m-%d') as enrollment_id,
        patient_id,
        program,
        coalesce(payer_from, enrolled_on) as payer_from,
        payer_id
    from source
    qualify row_number() over (
        partition by patient_id, program, enrolled_on, coalesce(payer_from, enrolled_on)
        order by delivery_seq desc, source_row desc
    ) = 1
)

select * from final
