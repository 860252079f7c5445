-- purpose: advisory lines for other claims that a payer's modifier rows call for, e.g. modifier 25
--          on an E/M visit on the day CoCM is initiated (condition em_same_day_as_cocm_start): the
--          E/M is billed elsewhere, so this is a worklist for the coder, not a claim line
-- grain: encounter_id, modifier
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_patient_months, int_time_entries_classified, stg_encounters, ref_encounter_codes,
--           ref_modifiers
with episode_starts as (
    -- the first day with counted care-management time in each episode's initial month (only
    -- programs with episodes have initial months)
    select m.patient_id, m.program, m.payer_id, m.service_month, min(e.service_date) as started_on
    from int_patient_months as m
    inner join int_time_entries_classified as e using (patient_id, program, service_month)
    where m.episode_month_type = 'initial' and m.has_service and e.counted_minutes > 0
    group by all
),

final as (
    select
        x.encounter_id,
        x.patient_id,
        s.payer_id,
        x.encounter_date,
        x.cpt_code,
        r.modifier,
        r.condition,
        'add modifier ' || r.modifier || ' to ' || x.cpt_code || ' on ' || strftime(x.encounter_date, '%Y-%m-%d')
            || ': ' || coalesce(r.note, r.condition) as advice
    from episode_starts as s
    inner join stg_encounters as x
        on x.patient_id = s.patient_id
        and x.encounter_date = s.started_on
    inner join ref_encounter_codes as c on c.code = x.cpt_code
    inner join ref_modifiers as r
        on r.payer_id in (s.payer_id, '*')
        and r.code in (x.cpt_code, c.category)
        and r.condition = 'em_same_day_as_cocm_start'
        and x.encounter_date >= r.effective_from
        and (r.effective_to is null or x.encounter_date <= r.effective_to)
)

select * from final
