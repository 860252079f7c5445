-- purpose: the CAS adjustments (group + CARC, amount) of each 835 answer row: the line's own, and its
--          share of the claim-level ones, allocated by charge (the last row takes the cents left), so
--          a claim-level adjustment is counted once (005010X221A1 section 1.10.2: CLP04 = sum of SVC03
--          - claim-level CAS); level says which
-- grain: payer_identifier, trace_number, claim_index, line_index, level, group_code, reason_code, adjustment_index
-- upstream: int_remittance_answers, stg_remittance_adjustments
with all_lines as (
    select * from int_remittance_answers
),

claim_cas as (
    select * from stg_remittance_adjustments where line_index is null and kind = 'carc'
),

allocated as (
    -- each claim-level CAS amount shared by the claim's rows, by charge; the last row takes the rest
    select
        l.payer_identifier, l.trace_number, l.claim_index, l.line_index, a.adjustment_index, a.group_code,
        a.reason_code,
        case when l.rn = l.n
            then a.amount - coalesce(sum(round(a.amount * l.weight, 2)) over prior, 0)
            else round(a.amount * l.weight, 2) end::decimal(12, 2) as amount
    from all_lines as l
    inner join claim_cas as a using (payer_identifier, trace_number, claim_index)
    window prior as (
        partition by a.payer_identifier, a.trace_number, a.claim_index, a.adjustment_index order by l.rn
        rows between unbounded preceding and 1 preceding
    )
),

line_adjustments as (
    select
        payer_identifier, trace_number, claim_index, line_index, adjustment_index, group_code, reason_code, amount,
        'line' as level
    from stg_remittance_adjustments
    where line_index is not null and kind = 'carc'
    union all
    select *, 'claim' as level from allocated
)

select * from line_adjustments
