-- purpose: claim lines with no fee-schedule amount, one row per payer, code and service month, with a
--          message naming them (e.g. FQHC/RHC G0512/G0511, for which no rate is shipped): the blocking
--          check claim_lines_unique_and_priced fails while this has rows; fix by loading a
--          fee_schedule.csv row for the payer (or '*') and code in force on the month's last day
-- grain: payer_id, code, service_month
-- upstream: fct_claims
with unpriced as (
    select * from fct_claims
    where expected_amount is null
),

final as (
    select
        payer_id,
        code,
        service_month,
        count(*) as claim_lines,
        sum(units)::integer as units,
        'no fee_schedule.csv row for payer ' || payer_id || ' (or *), code ' || code || ', in force on '
            || strftime(last_day(service_month), '%Y-%m-%d') || ': ' || count(*)
            || ' claim line(s) of ' || strftime(service_month, '%Y-%m')
            || ' unpriced; load your contracted rate' as message
    from unpriced
    group by payer_id, code, service_month
)

select * from final
order by service_month, payer_id, code
