-- purpose: rendering providers (the enrollment's billing_provider_id) with NPI and taxonomy for the
--          837P (optional providers extract), latest delivery per provider
-- grain: provider_id
-- upstream: raw_providers
with source as (
    select * from raw_providers
),

final as (
    select
        provider_id,
        nullif(regexp_replace(trim(npi), '[^0-9]', '', 'g'), '') as npi,
        nullif(upper(trim(taxonomy_code)), '') as taxonomy_code,
        nullif(upper(trim(last_name)), '') as last_name,
        nullif(upper(trim(first_name)), '') as first_name
    from source
    qualify row_number() over (partition by provider_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
