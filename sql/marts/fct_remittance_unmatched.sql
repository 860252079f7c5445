-- purpose: 835 service lines that pay no known claim line (no claim id + code match and no single
--          patient + date of service + code match), and lines that do not balance, with the reason
-- grain: trace_number, claim_index, line_index
-- upstream: fct_remittance_lines
with lines as (
    select * from fct_remittance_lines
),

final as (
    select
        trace_number,
        claim_index,
        line_index,
        claim_id,
        payer_id,
        payment_date,
        code,
        service_date,
        charge,
        paid,
        source_file,
        concat_ws('; ',
            case when claim_line_id is null
                then 'no claim line with this claim id and code, nor exactly one with this patient, date of service and code' end,
            case when not balanced then 'does not balance: charge <> paid + adjustments' end
        ) as reason
    from lines
    where claim_line_id is null or not balanced
)

select * from final
