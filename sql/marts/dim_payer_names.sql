-- purpose: the payer's name the pages show (payers.csv `name`, the latest effective row), so no page
--          shows a payer id where people read it (ids stay in the CSVs)
-- grain: payer_id
-- upstream: stg_payers
with payers as (
    select payer_id, name, effective_from from stg_payers
),

final as (
    select
        payer_id,
        coalesce(nullif(trim(name), ''), payer_id) as payer_name
    from payers
    qualify row_number() over (partition by payer_id order by effective_from desc nulls last, name) = 1
)

select * from final
