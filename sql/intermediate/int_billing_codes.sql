-- purpose: the billing engine: codes, units and dollars earned by each scenario's minutes under the
--          payer's rule set (threshold rows), add-on cap and fee schedule in force in the service month
-- grain: enrollment_id, service_month, scenario, code
-- upstream: int_billing_inputs, ref_code_thresholds, ref_fee_schedule
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
    inner join ref_code_thresholds as r
        on r.rule_set = i.rule_set
        and r.program = i.program
        and r.month_type in (i.month_type, 'any')
        and i.service_month >= r.effective_from
        and (r.effective_to is null or i.service_month <= r.effective_to)
        and i.minutes >= r.min_minutes
        and (r.max_minutes is null or i.minutes <= r.max_minutes)
),

-- an add-on code is billed only together with a base code
paired as (
    select * from matched
    qualify bool_or(kind = 'base') over (partition by enrollment_id, service_month, scenario)
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

-- the payer's own rate wins over the default ('*') rate; rates are those in force on the month's
-- last day (e.g. the 2024 conversion-factor change on 2024-03-09 prices March at the new rate)
priced as (
    select
        c.*,
        f.amount as unit_amount,
        f.payer_id as fee_schedule_payer
    from capped as c
    left join ref_fee_schedule as f
        on f.code = c.code
        and f.payer_id in (c.payer_id, '*')
        and last_day(c.service_month) >= f.effective_from
        and (f.effective_to is null or last_day(c.service_month) <= f.effective_to)
    qualify row_number() over (
        partition by c.enrollment_id, c.service_month, c.scenario, c.code
        order by f.payer_id = '*', f.effective_from desc
    ) = 1
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
        code,
        kind,
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
        round(units * unit_amount, 2)::double as amount,
        round((units_earned - units) * unit_amount, 2)::double as amount_over_cap
    from priced
)

select * from final
