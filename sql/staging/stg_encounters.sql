-- purpose: billed encounters (E/M, AWV, psychotherapy ...), latest delivery per encounter
-- grain: encounter_id
-- upstream: raw_encounters
with source as (
    select * from raw_encounters
),

final as (
    select
        encounter_id,
        patient_id,
        encounter_date,
        provider_id,
        upper(cpt_code) as cpt_code
    from source
    qualify row_number() over (partition by encounter_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
