-- purpose: time entries, typed and ranked by delivery: the latest delivery of an entry_id wins
-- grain: one row per delivered version of a time entry (version_rank = 1 is the live version)
-- upstream: raw_time_entries
with source as (
    select * from raw_time_entries
),

renamed as (
    select
        entry_id,
        patient_id,
        staff_id,
        service_date,
        date_trunc('month', service_date)::date as service_month,
        minutes,
        activity,
        program as entry_program,
        start_time,
        end_time,
        documented_at,
        encounter_id,
        source_file,
        source_row,
        delivery_seq
    from source
),

final as (
    select
        *,
        row_number() over (
            partition by entry_id order by delivery_seq desc, source_row desc
        ) as version_rank
    from renamed
)

select * from final
