-- purpose: the 835 side of a run in one row (printed by `bhi run`, shown on the payments page):
--          payments read and how many do not balance (BPR02 <> claims paid - PLB) by how much,
--          provider-level adjustments, answers that pay no claim line we sent (lines and dollars) or do
--          not balance, and the denied claim lines of the denial worklist
-- grain: one row
-- upstream: fct_remittance_payments, fct_remittance_provider_adjustments, fct_remittance_unmatched,
--           fct_denial_worklist
with payments as (
    select
        count(*) as payments,
        coalesce(sum(payment_amount), 0)::decimal(14, 2) as payment_amount,
        count(*) filter (where not balanced) as unbalanced_payments,
        coalesce(sum(abs(difference)) filter (where not balanced), 0)::decimal(14, 2) as unbalanced_difference
    from fct_remittance_payments
),

plb as (
    select count(*) as provider_adjustments, coalesce(sum(amount), 0)::decimal(14, 2) as provider_adjustment_amount
    from fct_remittance_provider_adjustments
),

unmatched as (
    select
        count(*) filter (where unmatched) as unmatched_lines,
        coalesce(sum(paid) filter (where unmatched), 0)::decimal(14, 2) as unmatched_paid,
        count(*) filter (where unbalanced) as unbalanced_lines
    from fct_remittance_unmatched
),

denials as (
    select count(*) as denied_lines, coalesce(sum(expected_amount), 0)::decimal(14, 2) as denied_expected_amount
    from fct_denial_worklist
),

final as (
    select * from payments, plb, unmatched, denials
)

select * from final
