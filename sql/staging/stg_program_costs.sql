-- purpose: monthly program costs other than staff (consultant contract, software, training)
-- grain: cost_month, facility_id, category
-- upstream: raw_program_costs
with source as (
    select * from raw_program_costs
),

final as (
    select
        month as cost_month,
        facility_id,
        category,
        amount
    from source
    qualify row_number() over (
        partition by month, facility_id, category order by delivery_seq desc, source_row desc
    ) = 1
)

select * from final
