-- purpose: break-even at current rates, all facilities, over the closed months with complete data:
--          the program cost per care manager and month, the revenue per billed patient-month, how
--          many billed patient-months per care manager and month the program bills today and how many
--          it needs to break even (cost / revenue per billed patient-month, rounded up)
-- grain: one row (none when there is no complete closed month or no care manager)
-- upstream: rpt_program_roi_facility, stg_staff
with total as (
    select * from rpt_program_roi_facility where is_total and closed_months > 0
),

care_managers as (
    select count(*) as care_managers, sum(coalesce(fte, 1)) as care_manager_fte
    from stg_staff
    where role = 'care_manager'
),

final as (
    select
        t.closed_months,
        c.care_managers,
        c.care_manager_fte,
        round(t.total_cost / t.closed_months / c.care_managers, 2) as cost_per_care_manager_month,
        case when t.patients_billed > 0 then round(t.expected_revenue / t.patients_billed, 2) end
            as revenue_per_billed_patient_month,
        round(t.patients_billed / t.closed_months / c.care_managers, 1) as billed_patient_months_per_care_manager,
        case when t.patients_billed > 0
            then ceil(t.total_cost / t.closed_months / c.care_managers / (t.expected_revenue / t.patients_billed))::integer
        end as break_even_billed_patient_months_per_care_manager
    from total as t
    cross join care_managers as c
    where c.care_managers > 0
)

select * from final
