-- purpose: the billing provider of a facility's claims (837P loop 2010AA): group NPI, tax id,
--          name, address, taxonomy and place of service (optional facility_billing extract), latest
--          delivery per facility
-- grain: facility_id
-- upstream: raw_facility_billing
with source as (
    select * from raw_facility_billing
),

final as (
    select
        facility_id,
        nullif(regexp_replace(trim(npi), '[^0-9]', '', 'g'), '') as npi,
        nullif(regexp_replace(trim(tin), '[^0-9]', '', 'g'), '') as tin,
        nullif(upper(trim(billing_name)), '') as billing_name,
        nullif(upper(trim(taxonomy_code)), '') as taxonomy_code,
        nullif(upper(trim(address_line)), '') as address_line,
        nullif(upper(trim(city)), '') as city,
        nullif(upper(trim(state)), '') as state,
        nullif(regexp_replace(trim(postal_code), '[^0-9]', '', 'g'), '') as postal_code,
        nullif(trim(place_of_service), '') as place_of_service
    from source
    qualify row_number() over (partition by facility_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
