-- purpose: every answer of an 835 per service line: a row per SVC line (loop 2110); a claim answered
--          without service lines (a claim-level denial or reversal, CLP + CAS only) gives a row per
--          billed line of that claim (one row when the claim id is not ours), the claim's charge and
--          payment allocated by billed charge, the last row taking the cents left; weight = the row's
--          share of its claim's charge, for allocating claim-level adjustments
-- grain: payer_identifier, trace_number, claim_index, line_index
-- upstream: stg_remittance_lines, stg_remittance_claims, fct_x12_claim_lines
with claims as (
    select * from stg_remittance_claims
),

svc as (
    select
        l.payer_identifier, l.trace_number, l.claim_index, l.line_index, l.code, l.original_code, l.modifiers,
        l.units, l.service_date, l.line_control_number, l.charge, l.paid,
        'service line' as answered_at, null::varchar as billed_claim_line_id
    from stg_remittance_lines as l
),

lineless as (
    -- claims answered without service lines: one row per billed line of the claim (one row when the
    -- claim id is not ours), weighted by billed charge
    select
        c.payer_identifier, c.trace_number, c.claim_index, c.charge as claim_charge, c.paid as claim_paid,
        x.claim_line_id, x.code, x.modifiers, x.units, x.date_of_service, x.line_control_number,
        coalesce(x.charge / nullif(sum(x.charge) over w, 0), 1.0 / count(*) over w) as weight,
        row_number() over (w order by x.line_number) as rn,
        count(*) over w as n
    from claims as c
    left join fct_x12_claim_lines as x on x.claim_id = c.claim_id
    where not exists (
        select 1 from stg_remittance_lines as l
        where l.payer_identifier = c.payer_identifier and l.trace_number = c.trace_number
            and l.claim_index = c.claim_index
    )
    window w as (partition by c.payer_identifier, c.trace_number, c.claim_index)
),

lineless_rows as (
    select
        payer_identifier, trace_number, claim_index, rn::integer as line_index, code, null as original_code,
        coalesce(modifiers, '') as modifiers, coalesce(units, 1) as units, date_of_service as service_date,
        line_control_number,
        case when rn = n
            then claim_charge - coalesce(sum(round(claim_charge * weight, 2)) over prior, 0)
            else round(claim_charge * weight, 2) end::decimal(12, 2) as charge,
        case when rn = n
            then claim_paid - coalesce(sum(round(claim_paid * weight, 2)) over prior, 0)
            else round(claim_paid * weight, 2) end::decimal(12, 2) as paid,
        'claim' as answered_at, claim_line_id as billed_claim_line_id
    from lineless
    window prior as (
        partition by payer_identifier, trace_number, claim_index order by rn
        rows between unbounded preceding and 1 preceding
    )
),

all_lines as (
    select
        *,
        coalesce(charge / nullif(sum(charge) over w, 0), 1.0 / count(*) over w) as weight,
        row_number() over (w order by line_index) as rn,
        count(*) over w as n
    from (
        select * from svc
        union all by name
        select * from lineless_rows
    )
    window w as (partition by payer_identifier, trace_number, claim_index)
)

select * from all_lines
