-- purpose: the threshold rows (ref_code_thresholds) that apply to each rule set, program, billed month
--          type, facility type and service month in the data (the payer's rule set and its what-if rule
--          set): rows in force for the month, for the month type or 'any'; rows naming the facility type
--          (e.g. fqhc G0512 until 2025-12-31) override the generic rows (empty facility_type) of the same
--          rule set, program and month type while they are in force
-- grain: rule_set, program, month_type, facility_type, service_month, code
-- upstream: int_patient_months, ref_code_thresholds, ref_rule_sets
with months as (
    select distinct rule_set, program, month_type, facility_type, service_month
    from int_patient_months
),

-- the payer's rule set, and the rule set the what-if prices the same month under
keys as (
    select * from months
    union
    select w.what_if_rule_set, m.program, m.month_type, m.facility_type, m.service_month
    from months as m
    inner join ref_rule_sets as w using (rule_set)
),

candidates as (
    select
        k.rule_set,
        k.program,
        k.month_type,
        k.facility_type,
        k.service_month,
        r.code,
        r.kind,
        r.min_minutes,
        r.max_minutes,
        r.unit_minutes,
        r.facility_type is not null as facility_specific
    from keys as k
    inner join ref_code_thresholds as r
        on r.rule_set = k.rule_set
        and r.program = k.program
        and r.month_type in (k.month_type, 'any')
        and (r.facility_type is null or r.facility_type = k.facility_type)
        and k.service_month >= r.effective_from
        and (r.effective_to is null or k.service_month <= r.effective_to)
),

final as (
    select * exclude (facility_specific), facility_specific as facility_row
    from candidates
    -- facility rows in force replace the generic rows for that rule set, program and month type
    qualify facility_specific = max(facility_specific) over (
        partition by rule_set, program, month_type, facility_type, service_month
    )
)

select * from final
