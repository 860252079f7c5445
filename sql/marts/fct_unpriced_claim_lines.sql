-- purpose: the claim lines of closed months with no fee-schedule amount, one row per line, with the
--          payer, code, service month, units and the reason (no fee_schedule.csv row for the payer or
--          '*' in force on the month's last day, or a row in force without an amount, basis no_rate):
--          e.g. FQHC/RHC G0512/G0511, for which no rate is shipped, or a month of a year with no row.
--          The lines stay in fct_claims (price_status 'unpriced'); every export is still written,
--          unpriced_claim_lines.csv lists them and `bhi run` exits non-zero until a rate is loaded
-- grain: claim_line_id
-- upstream: fct_claims
with unpriced as (
    select * from fct_claims
    where price_status = 'unpriced'
),

final as (
    select
        claim_line_id,
        facility_id,
        patient_id,
        payer_id,
        program,
        code,
        service_month,
        units,
        unpriced_reason as reason,
        case unpriced_reason
            when 'fee_row_without_amount' then 'the fee_schedule.csv row for payer ' || payer_id || ' (or *), code '
                || code || ', in force on ' || strftime(last_day(service_month), '%Y-%m-%d')
                || ' has no amount (basis no_rate); load your contracted rate'
            else 'no fee_schedule.csv row for payer ' || payer_id || ' (or *), code ' || code || ', in force on '
                || strftime(last_day(service_month), '%Y-%m-%d') || '; load the rate for that year'
        end as message
    from unpriced
)

select * from final
order by service_month, payer_id, code, claim_line_id
