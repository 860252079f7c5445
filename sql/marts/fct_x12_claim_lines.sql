-- purpose: every claim line of a closed month with what its X12 837P needs: the stable claim id
--          (patient, program, service month, payer, facility: the same claim on every rerun), line
--          number, charge (charge master, separate from the expected allowed amount), billing
--          provider (facility), rendering provider, subscriber, payer, diagnosis, place of service;
--          missing_elements names every required element that is absent or malformed, and every claim
--          scrub edit the line fails (fct_claim_scrub_findings: NCCI PTP / MUE, add-on, APCM): a claim with
--          any such line is held back, never sent half-filled or with a line a scrubber rejects; no values
--          are named
-- grain: claim_line_id
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients: a new patients
--              file puts its patients in scope; a new providers or facility_billing file forces a full build)
-- upstream: fct_claims, stg_enrollments, stg_patients, stg_providers, stg_facility_billing,
--           ref_charge_master, ref_payer_edi, fct_claim_scrub_findings
with claims as (
    select * from fct_claims
),

scrub as (
    select
        claim_line_id,
        string_agg(edit || coalesce(' ' || nullif(other_code, ''), ''), ', ' order by edit, other_code) as scrub_edits
    from fct_claim_scrub_findings
    group by claim_line_id
),

keyed as (
    select
        c.*,
        -- a hash, so the claim id carries no patient identifier; CLM01 allows 38 characters
        'B' || upper(substr(md5(concat_ws('|', c.patient_id, c.program, strftime(c.service_month, '%Y-%m'),
            c.payer_id, c.facility_id)), 1, 19)) as claim_id
    from claims as c
),

charges as (
    select
        k.claim_line_id,
        round(m.amount * k.units, 2) as charge
    from keyed as k
    inner join ref_charge_master as m
        on m.code = k.code
        and k.date_of_service >= m.effective_from
        and (m.effective_to is null or k.date_of_service <= m.effective_to)
    qualify row_number() over (partition by k.claim_line_id order by m.effective_from desc) = 1
),

payer_edi as (
    select
        k.claim_line_id,
        e.payer_edi_id,
        upper(e.payer_name) as payer_name,
        e.claim_filing_indicator,
        coalesce(lower(e.interchange_per_billing_provider) = 'true', false) as interchange_per_billing_provider
    from keyed as k
    inner join ref_payer_edi as e
        on e.payer_id = k.payer_id
        and k.date_of_service >= e.effective_from
        and (e.effective_to is null or k.date_of_service <= e.effective_to)
    qualify row_number() over (partition by k.claim_line_id order by e.effective_from desc) = 1
),

joined as (
    select
        k.claim_id,
        row_number() over (partition by k.claim_id order by k.code) as line_number,
        k.claim_id || '-' || k.code as line_control_number,
        k.claim_line_id,
        k.enrollment_id,
        k.patient_id,
        k.program,
        k.payer_id,
        k.facility_id,
        k.billing_provider_id,
        k.service_month,
        k.date_of_service,
        k.code,
        k.units,
        k.modifiers,
        k.expected_amount,
        k.expected_collection,
        ch.charge,
        nullif(upper(replace(trim(e.diagnosis_code), '.', '')), '') as diagnosis_code,
        pe.payer_edi_id,
        pe.payer_name,
        pe.claim_filing_indicator,
        coalesce(pe.interchange_per_billing_provider, false) as interchange_per_billing_provider,
        p.member_id,
        p.last_name as patient_last_name,
        p.first_name as patient_first_name,
        p.birth_date as patient_birth_date,
        p.sex as patient_sex,
        p.address_line as patient_address_line,
        p.city as patient_city,
        p.state as patient_state,
        p.postal_code as patient_postal_code,
        f.npi as billing_npi,
        f.tin as billing_tin,
        f.billing_name,
        f.taxonomy_code as billing_taxonomy_code,
        f.address_line as billing_address_line,
        f.city as billing_city,
        f.state as billing_state,
        f.postal_code as billing_postal_code,
        f.place_of_service,
        r.npi as rendering_npi,
        r.last_name as rendering_last_name,
        r.first_name as rendering_first_name,
        r.taxonomy_code as rendering_taxonomy_code,
        sc.scrub_edits
    from keyed as k
    left join charges as ch using (claim_line_id)
    left join payer_edi as pe using (claim_line_id)
    left join stg_enrollments as e using (enrollment_id)
    left join stg_patients as p on p.patient_id = k.patient_id
    left join stg_facility_billing as f on f.facility_id = k.facility_id
    left join stg_providers as r on r.provider_id = k.billing_provider_id
    left join scrub as sc using (claim_line_id)
),

checked as (
    select
        *,
        concat_ws(', ',
            case when charge is null then 'charge (no charge_master row in force)' end,
            case when diagnosis_code is null or not regexp_full_match(diagnosis_code, '[A-Z][0-9A-Z]{2,6}')
                then 'diagnosis code' end,
            case when payer_edi_id is null then 'payer id (no payer_edi row in force)' end,
            case when member_id is null then 'member id' end,
            case when patient_last_name is null then 'patient last name' end,
            case when patient_first_name is null then 'patient first name' end,
            case when patient_birth_date is null then 'patient date of birth' end,
            case when patient_sex is null or patient_sex not in ('M', 'F', 'U') then 'patient sex (M, F or U)' end,
            case when patient_address_line is null then 'patient address' end,
            case when patient_city is null then 'patient city' end,
            case when patient_state is null or not regexp_full_match(patient_state, '[A-Z]{2}')
                then 'patient state' end,
            case when patient_postal_code is null or length(patient_postal_code) not in (5, 9)
                then 'patient postal code' end,
            -- an NPI has 10 digits and a Luhn check digit over the prefix 80840 (CMS NPI standard)
            case when billing_npi is null or length(billing_npi) <> 10 or not (10 - list_sum(list_transform(range(1, 15), lambda i: case when i % 2 = 0
                then (cast(substr('80840' || substr(billing_npi, 1, 9), i, 1) as int) * 2) // 10
                    + (cast(substr('80840' || substr(billing_npi, 1, 9), i, 1) as int) * 2) % 10
                else cast(substr('80840' || substr(billing_npi, 1, 9), i, 1) as int) end)) % 10) % 10
                = cast(substr(billing_npi, 10, 1) as int)
                then 'billing provider NPI' end,
            case when billing_tin is null or length(billing_tin) <> 9 then 'billing provider tax id' end,
            case when billing_name is null then 'billing provider name' end,
            case when billing_taxonomy_code is null or length(billing_taxonomy_code) <> 10
                then 'billing provider taxonomy' end,
            case when billing_address_line is null then 'billing provider address' end,
            case when billing_city is null then 'billing provider city' end,
            case when billing_state is null or not regexp_full_match(billing_state, '[A-Z]{2}')
                then 'billing provider state' end,
            -- 837P 2010AA N403: the billing provider's ZIP code must have 9 digits
            case when billing_postal_code is null or length(billing_postal_code) <> 9
                then 'billing provider ZIP+4' end,
            case when place_of_service is null or not regexp_full_match(place_of_service, '[0-9]{2}')
                then 'place of service' end,
            case when rendering_npi is null or length(rendering_npi) <> 10 or not (10 - list_sum(list_transform(range(1, 15), lambda i: case when i % 2 = 0
                then (cast(substr('80840' || substr(rendering_npi, 1, 9), i, 1) as int) * 2) // 10
                    + (cast(substr('80840' || substr(rendering_npi, 1, 9), i, 1) as int) * 2) % 10
                else cast(substr('80840' || substr(rendering_npi, 1, 9), i, 1) as int) end)) % 10) % 10
                = cast(substr(rendering_npi, 10, 1) as int)
                then 'rendering provider NPI' end,
            case when rendering_last_name is null then 'rendering provider name' end,
            case when rendering_taxonomy_code is null or length(rendering_taxonomy_code) <> 10
                then 'rendering provider taxonomy' end,
            'claim scrub (' || code || '): ' || scrub_edits
        ) as missing_elements
    from joined
),

final as (
    select
        *,
        -- a claim is sent whole or not at all: the elements missing on any of its lines, in line order
        -- (stated: without it, the order was only the query plan's)
        string_agg(nullif(missing_elements, ''), '; ' order by line_number) over (partition by claim_id)
            as claim_missing_elements,
        md5(concat_ws('|', claim_id, line_number, code, units, modifiers, date_of_service, charge, diagnosis_code,
            payer_edi_id, claim_filing_indicator, member_id, patient_last_name, patient_first_name,
            patient_birth_date, patient_sex, patient_address_line, patient_city, patient_state,
            patient_postal_code, billing_npi, billing_tin, billing_name, billing_taxonomy_code,
            billing_address_line, billing_city, billing_state, billing_postal_code, place_of_service,
            rendering_npi, rendering_last_name, rendering_first_name, rendering_taxonomy_code))
            as line_fingerprint
    from checked
)

select * exclude (missing_elements), nullif(missing_elements, '') as missing_elements from final
