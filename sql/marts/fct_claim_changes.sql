-- purpose: which claim lines this run added, removed or changed compared with the claims of the
--          last run that published its outputs (claims_changes.csv; a run that failed in between
--          does not move that baseline): a late or corrected entry re-opens a closed month, and the
--          month's claims are recomputed; a month that closed since the last run adds its claims
-- grain: claim_line_id (one row per line that differs; unchanged lines are not listed)
-- upstream: fct_claims, claims_previous_run, raw_time_entries, ingest_files, run_parameters
with current_claims as (
    select claim_line_id, patient_id, payer_id, program, service_month, code, units, modifiers,
           date_of_service, expected_amount
    from fct_claims
),

previous_claims as (
    select * from claims_previous_run
),

-- files loaded since the last publication, by this run or by a run that failed after loading them
-- (their entries are what re-opened a month)
this_run_files as (
    select delivery_seq from ingest_files
    where status = 'loaded'
      and loaded_at > coalesce((select last_published_at from run_parameters), '-infinity'::timestamp)
),

delivered_now as (
    select patient_id, date_trunc('month', service_date)::date as service_month, count(*) as entries_delivered
    from raw_time_entries
    where delivery_seq in (select delivery_seq from this_run_files)
    group by all
),

compared as (
    select
        coalesce(c.claim_line_id, p.claim_line_id) as claim_line_id,
        coalesce(c.patient_id, p.patient_id) as patient_id,
        coalesce(c.payer_id, p.payer_id) as payer_id,
        coalesce(c.program, p.program) as program,
        coalesce(c.service_month, p.service_month) as service_month,
        coalesce(c.code, p.code) as code,
        case
            when p.claim_line_id is null then 'added'
            when c.claim_line_id is null then 'removed'
            when (c.units, c.modifiers, c.date_of_service, c.expected_amount)
                is distinct from (p.units, p.modifiers, p.date_of_service, p.expected_amount) then 'changed'
        end as change,
        p.units as units_before,
        c.units as units_after,
        p.expected_amount as amount_before,
        c.expected_amount as amount_after,
        p.date_of_service as date_of_service_before,
        c.date_of_service as date_of_service_after,
        p.modifiers as modifiers_before,
        c.modifiers as modifiers_after
    from current_claims as c
    full outer join previous_claims as p using (claim_line_id)
),

final as (
    select
        x.*,
        coalesce(x.amount_after, 0) - coalesce(x.amount_before, 0) as amount_difference,
        coalesce(d.entries_delivered, 0) as entries_delivered_this_run
    from compared as x
    left join delivered_now as d using (patient_id, service_month)
    where x.change is not null
)

select * from final
