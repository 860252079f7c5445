-- purpose: facilities and their facility type (physician_office, fqhc, rhc: ref_facility_types), latest
--          delivery per facility; a facility not listed here takes the default_facility_type setting;
--          covered_from (optional) states the first day the extracts cover for the facility
-- grain: facility_id
-- upstream: raw_facilities
with source as (
    select * from raw_facilities
),

final as (
    select
        facility_id,
        facility_type,
        name,
        covered_from
    from source
    qualify row_number() over (partition by facility_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
