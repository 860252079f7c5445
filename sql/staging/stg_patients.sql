-- purpose: patient demographics and member ids for the 837P (optional patients extract), latest
--          delivery per patient; names and postal fields upper-cased and trimmed as X12 expects
-- grain: patient_id
-- upstream: raw_patients
with source as (
    select * from raw_patients
),

final as (
    select
        patient_id,
        nullif(trim(member_id), '') as member_id,
        nullif(upper(trim(last_name)), '') as last_name,
        nullif(upper(trim(first_name)), '') as first_name,
        birth_date,
        nullif(upper(trim(sex)), '') as sex,
        nullif(upper(trim(address_line)), '') as address_line,
        nullif(upper(trim(city)), '') as city,
        nullif(upper(trim(state)), '') as state,
        nullif(regexp_replace(trim(postal_code), '[^0-9]', '', 'g'), '') as postal_code
    from source
    qualify row_number() over (partition by patient_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
