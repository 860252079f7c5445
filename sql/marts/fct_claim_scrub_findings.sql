-- purpose: the claim scrub before the 837P: every claim line of a closed month checked against the NCCI
--          practitioner PTP edits (ref_ncci_ptp: same patient, date of service and billing practitioner;
--          the Column 2 line fails unless the edit's modifier indicator is 1 and the line carries a
--          bypass modifier (setting ncci_ptp_bypass_modifiers); indicator 9 never fails; an edit applies
--          from its effective date to the day before its deletion date), the practitioner MUEs
--          (ref_ncci_mue: MAI 1 units per line, MAI 2 / 3 units of the code per patient, date and
--          practitioner summed over lines), add-on codes without a primary on the date (ref_add_on_codes),
--          APCM add-ons without an APCM base in the month or with the base by another practitioner, and
--          standalone codes the payer bills as APCM add-ons in a month with the base by the same
--          practitioner (ref_apcm_add_ons, stg_apcm); a line with a finding holds its claim back from
--          the 837P (fct_x12_claim_lines), never dropped
-- grain: claim_line_id, edit, other_code
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: fct_claims, ref_ncci_ptp, ref_ncci_mue, ref_add_on_codes, ref_apcm_add_ons, stg_apcm, ref_settings
with lines as (
    select
        claim_line_id, patient_id, payer_id, program, service_month, code, units, modifiers, date_of_service,
        billing_provider_id
    from fct_claims
),

bypass as (
    select list_transform(string_split(max(value), ','), lambda m: upper(trim(m))) as modifiers
    from ref_settings
    where setting = 'ncci_ptp_bypass_modifiers'
),

ptp as (
    select
        b.claim_line_id,
        'ncci_ptp' as edit,
        a.code as other_code,
        'NCCI PTP edit ' || e.column_1 || ' / ' || e.column_2 || ': ' || b.code || ' is Column 2 of ' || a.code
            || ' on the same date of service by the same practitioner; modifier indicator ' || e.modifier_indicator
            || case e.modifier_indicator
                when '0' then ' (no modifier bypasses it)'
                else ' (no NCCI-associated modifier on the line)'
            end
            || coalesce('; ' || e.ptp_edit_rationale, '') || ' (' || e.source_file || ')' as detail
    from lines as a
    inner join lines as b
        on b.patient_id = a.patient_id
        and b.date_of_service = a.date_of_service
        and b.billing_provider_id is not distinct from a.billing_provider_id
        and b.claim_line_id <> a.claim_line_id
    inner join ref_ncci_ptp as e
        on e.column_1 = a.code
        and e.column_2 = b.code
        and b.date_of_service >= e.effective_date
        and (e.deletion_date is null or b.date_of_service < e.deletion_date)
    cross join bypass as x
    where e.modifier_indicator = '0'
        or (e.modifier_indicator = '1'
            and not list_has_any(
                list_transform(string_split(coalesce(b.modifiers, ''), ','), lambda m: upper(trim(m))),
                coalesce(x.modifiers, [])
            ))
),

mue as (
    select
        l.claim_line_id,
        'ncci_mue' as edit,
        '' as other_code,
        l.code,
        l.units,
        m.mue_value,
        m.mue_adjudication_indicator,
        m.mue_adjudication_text,
        m.mue_rationale,
        m.source_file,
        sum(l.units) over (partition by l.patient_id, l.date_of_service, l.billing_provider_id, l.code)
            as units_on_date
    from lines as l
    inner join ref_ncci_mue as m on m.code = l.code
),

mue_failed as (
    select
        claim_line_id,
        edit,
        other_code,
        'NCCI MUE ' || code || ': '
        || case
            when mue_adjudication_indicator = 1 then units || ' unit(s) on the line'
            else units_on_date || ' unit(s) on the date of service'
        end
        || ', more than the MUE value ' || mue_value || ' (MAI ' || mue_adjudication_text
        || coalesce('; ' || mue_rationale, '') || ') (' || source_file || ')' as detail
    from mue
    where (mue_adjudication_indicator = 1 and units > mue_value)
        or (mue_adjudication_indicator in (2, 3) and units_on_date > mue_value)
),

add_ons as (
    select
        l.claim_line_id,
        'add_on_without_primary' as edit,
        '' as other_code,
        'add-on ' || l.code || ' without its primary code ('
        || string_agg(distinct a.primary_code, ' or ' order by a.primary_code)
        || ') on the same date of service by the same practitioner' as detail
    from lines as l
    inner join ref_add_on_codes as a
        on a.add_on_code = l.code
        and l.date_of_service >= a.effective_from
        and (a.effective_to is null or l.date_of_service <= a.effective_to)
    left join lines as p
        on p.patient_id = l.patient_id
        and p.date_of_service = l.date_of_service
        and p.billing_provider_id is not distinct from l.billing_provider_id
        and p.code = a.primary_code
    group by l.claim_line_id, l.code
    having count(p.claim_line_id) = 0
),

apcm_codes as (
    select distinct apcm_code as code from ref_apcm_add_ons where apcm_code is not null
),

apcm_add_ons as (
    select
        l.claim_line_id,
        case when s.patient_id is null then 'apcm_add_on_without_base' else 'apcm_add_on_other_practitioner' end
            as edit,
        coalesce(s.apcm_code, '') as other_code,
        case
            when s.patient_id is null then 'APCM add-on ' || l.code || ' without an APCM base code (G0556-G0558)'
                || ' for the patient in the month (apcm extract)'
            else 'APCM add-on ' || l.code || ' billed by ' || coalesce(l.billing_provider_id, '?') || ' but the APCM base '
                || s.apcm_code || ' by ' || s.apcm_provider_id || ': the add-on needs the base by the same practitioner'
        end as detail
    from lines as l
    semi join apcm_codes as c on c.code = l.code
    left join stg_apcm as s
        on s.patient_id = l.patient_id
        and s.service_month = l.service_month
    where s.patient_id is null or s.apcm_provider_id is distinct from l.billing_provider_id
),

standalone as (
    select
        l.claim_line_id,
        'standalone_code_in_apcm_month' as edit,
        s.apcm_code as other_code,
        'standalone ' || l.code || ' in a month with the APCM base ' || s.apcm_code || ' by the same practitioner: '
            || coalesce('bill it as ' || any_value(x.apcm_code), 'not billed with the APCM add-on')
            || ' (apcm_add_ons.csv)' as detail
    from lines as l
    inner join stg_apcm as s
        on s.patient_id = l.patient_id
        and s.service_month = l.service_month
        and s.apcm_provider_id = l.billing_provider_id
    inner join ref_apcm_add_ons as x
        on x.payer_id = l.payer_id
        and x.code = l.code
        and l.service_month >= x.effective_from
        and (x.effective_to is null or l.service_month <= x.effective_to)
    group by l.claim_line_id, l.code, s.apcm_code
),

findings as (
    select claim_line_id, edit, other_code, detail from ptp
    union all
    select claim_line_id, edit, other_code, detail from mue_failed
    union all
    select claim_line_id, edit, other_code, detail from add_ons
    union all
    select claim_line_id, edit, other_code, detail from apcm_add_ons
    union all
    select claim_line_id, edit, other_code, detail from standalone
),

final as (
    select
        f.claim_line_id,
        f.edit,
        f.other_code,
        l.patient_id,
        l.payer_id,
        l.program,
        l.service_month,
        l.date_of_service,
        l.billing_provider_id,
        l.code,
        l.units,
        l.modifiers,
        f.detail
    from findings as f
    inner join lines as l using (claim_line_id)
    -- one row per line, edit and other code (a PTP pair found twice over two facilities' lines is one)
    qualify row_number() over (partition by f.claim_line_id, f.edit, f.other_code order by f.detail) = 1
)

select * from final
