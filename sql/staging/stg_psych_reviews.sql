-- purpose: documented psychiatric consultant reviews, latest delivery per review
-- grain: review_id
-- upstream: raw_psych_reviews
with source as (
    select * from raw_psych_reviews
),

final as (
    select
        review_id,
        patient_id,
        review_date,
        date_trunc('month', review_date)::date as review_month,
        consultant_id
    from source
    qualify row_number() over (partition by review_id order by delivery_seq desc, source_row desc) = 1
)

select * from final
