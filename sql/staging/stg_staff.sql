-- purpose: staff roster, latest delivery per staff member
-- grain: staff_id
-- upstream: raw_staff
with source as (
    select * from raw_staff
),

final as (
    select
        staff_id,
        role,
        facility_id,
        name,
        annual_cost,
        fte
    from source
    qualify row_number() over (partition by staff_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
