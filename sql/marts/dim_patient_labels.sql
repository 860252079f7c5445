-- purpose: how the pages name a patient where people act on it (worklist, outreach, revenue gap,
--          drill-down): "LAST, FIRST" from the patients extract, with the date of birth when two
--          patients share that name; the patient id when the extract has no name (ids stay in the CSVs)
-- grain: patient_id
-- upstream: stg_patients
with patients as (
    select
        patient_id,
        birth_date,
        nullif(concat_ws(', ', last_name, first_name), '') as patient_name
    from stg_patients
),

shared as (
    select
        *,
        count(*) over (partition by patient_name) > 1 as shares_name
    from patients
),

final as (
    select
        patient_id,
        patient_name,
        birth_date,
        coalesce(shares_name and patient_name is not null, false) as shares_name,
        case
            when patient_name is null then patient_id
            when shares_name then patient_name || ' (born ' || coalesce(strftime(birth_date, '%Y-%m-%d'), 'unknown') || ')'
            else patient_name
        end as patient_label
    from shared
)

select * from final
