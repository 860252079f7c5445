-- purpose: 835 answers that pay no known claim line (no rule of fct_remittance_lines names exactly one
--          claim line), and answers that do not balance, with the reason and the dollars
-- grain: payer_identifier, trace_number, claim_index, line_index
-- upstream: fct_remittance_lines
with lines as (
    select * from fct_remittance_lines
),

final as (
    select
        payer_identifier,
        trace_number,
        claim_index,
        line_index,
        claim_id,
        claim_status,
        payer_id,
        payment_date,
        payer_claim_control_number,
        code,
        original_code,
        line_control_number,
        service_date,
        charge,
        paid,
        patient_responsibility,
        claim_line_id is null as unmatched,
        not balanced as unbalanced,
        source_file,
        concat_ws('; ',
            case when claim_line_id is null
                then 'pays no claim line we sent: no claim id + line control number, claim id + code or billed code,'
                    || ' nor exactly one claim line with this patient, date of service and code' end,
            case when not balanced
                then 'does not balance: charge <> paid + adjustments (SVC02 = SVC03 + CAS, CLP03 = CLP04 + CAS)' end
        ) as reason
    from lines
    where claim_line_id is null or not balanced
)

select * from final
