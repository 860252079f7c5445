-- purpose: the billing engine: codes, units and dollars earned by each scenario's minutes under the
--          payer's rule set (threshold rows in force for the month and the facility type), add-on cap
--          and fee schedule in force in the service month; a code without a fee-schedule row in force
--          (or whose row in force has no amount, basis no_rate) has a null unit_amount and amount and an
--          unpriced_reason (reported by fct_unpriced_claim_lines): never another year's rate.
--          In an APCM add-on month (int_apcm_months: an APCM base by the same practitioner, payer rows in
--          ref_apcm_add_ons) each standalone code is billed as its add-on (99492 -> G0568, 99493 -> G0569,
--          99484 -> G0570: one unit) or not at all (a row without apcm_code: 99494, G2214);
--          standalone_code keeps the code the minutes earned (kind stays: the add-on is the month's one code)
-- grain: enrollment_id, service_month, scenario, code
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_billing_inputs, int_code_thresholds, ref_fee_schedule, int_apcm_months, ref_apcm_add_ons
with inputs as (
    select * from int_billing_inputs
    where minutes > 0
),

matched as (
    select
        i.*,
        r.code,
        r.kind,
        r.min_minutes,
        r.max_minutes,
        r.unit_minutes,
        -- base code: one unit inside its band; add-on: one unit at min_minutes, one more per unit_minutes
        case
            when r.kind = 'base' then 1
            else (i.minutes - r.min_minutes) // r.unit_minutes + 1
        end as units_earned
    from inputs as i
    inner join int_code_thresholds as r
        on r.rule_set = i.rule_set
        and r.program = i.program
        and r.month_type = i.month_type
        and r.facility_type is not distinct from i.facility_type
        and r.service_month = i.service_month
        and i.minutes >= r.min_minutes
        and (r.max_minutes is null or i.minutes <= r.max_minutes)
),

-- an add-on code is billed only together with a base code
bases as (
    select distinct enrollment_id, service_month, scenario from matched where kind = 'base'
),

paired as (
    select * from matched
    semi join bases using (enrollment_id, service_month, scenario)
),

capped as (
    select
        *,
        case
            when kind = 'add_on' and max_add_on_units is not null then least(units_earned, max_add_on_units)
            else units_earned
        end as units
    from paired
),

-- APCM add-on months: the payer's row for the code and month type in force in the month
apcm as (
    select
        c.enrollment_id,
        c.service_month,
        c.scenario,
        c.code,
        x.apcm_code,
        a.apcm_code as apcm_base_code
    from capped as c
    inner join int_apcm_months as a
        on a.enrollment_id = c.enrollment_id
        and a.service_month = c.service_month
        and a.apcm_status = 'add_on'
    inner join ref_apcm_add_ons as x
        on x.payer_id = c.payer_id
        and x.code = c.code
        and x.month_type in (c.month_type, 'any')
        and c.service_month >= x.effective_from
        and (x.effective_to is null or c.service_month <= x.effective_to)
),

substituted as (
    select
        c.* replace (
            coalesce(x.apcm_code, c.code) as code,
            case when x.apcm_code is not null then 1 else c.units end as units,
            case when x.apcm_code is not null then 1 else c.units_earned end as units_earned
        ),
        c.code as standalone_code,
        x.apcm_base_code
    from capped as c
    left join apcm as x using (enrollment_id, service_month, scenario, code)
    -- a standalone code with no add-on of its own in an APCM month bills nothing
    where x.code is null or x.apcm_code is not null
),

-- the payer's own row wins over the default ('*') row; rows are those in force on the month's
-- last day (e.g. the 2024 conversion-factor change on 2024-03-09 prices March at the new rate);
-- resolved once per payer, code and month, then joined to every line. Fee rows carry the years they
-- are for (reference.py rejects overlapping rows), so a month outside every row stays unpriced.
rates as (
    select
        k.payer_id, k.code, k.service_month, f.amount as unit_amount, f.payer_id as fee_schedule_payer,
        f.basis as fee_basis
    from (select distinct payer_id, code, service_month from substituted) as k
    inner join ref_fee_schedule as f
        on f.code = k.code
        and f.payer_id in (k.payer_id, '*')
        and last_day(k.service_month) >= f.effective_from
        and (f.effective_to is null or last_day(k.service_month) <= f.effective_to)
    qualify row_number() over (
        partition by k.payer_id, k.code, k.service_month order by f.payer_id = '*', f.effective_from desc
    ) = 1
),

priced as (
    select
        c.*,
        r.unit_amount,
        r.fee_schedule_payer,
        r.fee_basis,
        case
            when r.fee_schedule_payer is null then 'no_fee_row_in_force'
            when r.unit_amount is null then 'fee_row_without_amount'
        end as unpriced_reason
    from substituted as c
    left join rates as r using (payer_id, code, service_month)
),

final as (
    select
        enrollment_id,
        service_month,
        scenario,
        minutes,
        payer_id,
        program,
        rule_set,
        month_type,
        facility_type,
        code,
        kind,
        standalone_code,
        apcm_base_code,
        min_minutes,
        max_minutes,
        unit_minutes,
        units::integer as units,
        (units_earned - units)::integer as units_over_cap,
        case
            when units_earned > units then minutes - (min_minutes + units * unit_minutes) + 1
            else 0
        end::integer as minutes_over_cap,
        unit_amount::double as unit_amount,
        fee_schedule_payer,
        fee_basis,
        unpriced_reason,
        round(units * unit_amount, 2)::double as amount,
        round((units_earned - units) * unit_amount, 2)::double as amount_over_cap
    from priced
)

select * from final
