-- purpose: the prerequisites of billing.md section 4 beyond consent and the consultant review, per
--          patient-month: the initiating visit and a behavioral health diagnosis (gates),
--          measurement-based care (a warning, or a gate
--          where the payer says so) and the double-billing risk of an outside therapist (a flag)
-- grain: patient_id, program, service_month
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_patient_months, stg_encounters, stg_assessments, stg_staff, stg_enrollments,
--           ref_encounter_codes, ref_instruments, ref_programs, ref_settings, ref_diagnosis_codes
with months as (
    select * from int_patient_months
),

settings as (
    select
        max(value) filter (where setting = 'initiating_visit_lookback_months')::integer as lookback_months,
        max(value) filter (where setting = 'measurement_lookback_days')::integer as measurement_days
    from ref_settings
),

-- the month the current episode started (its initial month with service); a month before any
-- service anchors on itself
anchored as (
    select
        m.patient_id,
        m.program,
        m.service_month,
        m.billing_provider_id,
        m.enrollment_id,
        coalesce(
            last_value(case when m.has_service and m.episode_month_type = 'initial' then m.service_month end ignore nulls)
                over (partition by m.patient_id, m.program order by m.service_month),
            min(case when m.has_service then m.service_month end) over (partition by m.patient_id, m.program),
            m.service_month
        ) as episode_start_month
    from months as m
),

codes as (
    select * from ref_encounter_codes
),

-- an E/M, AWV or IPPE by the billing practitioner within the look-back before the episode starts
-- (up to the end of its first month)
initiating_visits as (
    select a.patient_id, a.program, a.service_month, max(e.encounter_date) as initiating_visit_on
    from anchored as a
    cross join settings as s
    inner join stg_encounters as e
        on e.patient_id = a.patient_id
        and e.provider_id = a.billing_provider_id
        and e.encounter_date >= a.episode_start_month - to_months(s.lookback_months)
        and e.encounter_date <= last_day(a.episode_start_month)
    inner join codes as c on c.code = e.cpt_code and c.initiating_visit
    group by all
),

scales as (
    select a.patient_id, a.program, a.service_month,
        bool_or(date_trunc('month', x.assessment_date) = a.episode_start_month) as scale_in_initial_month,
        bool_or(x.assessment_date > last_day(a.service_month) - to_days(s.measurement_days)
            and x.assessment_date <= last_day(a.service_month)) as scale_in_lookback
    from anchored as a
    cross join settings as s
    inner join stg_assessments as x
        on x.patient_id = a.patient_id
        and x.assessment_date <= last_day(a.service_month)
    inner join ref_instruments using (instrument)
    group by all
),

-- psychotherapy in the month by a provider who is not on the program's staff roster
outside_therapy as (
    select e.patient_id, date_trunc('month', e.encounter_date)::date as service_month, count(*) as encounters
    from stg_encounters as e
    inner join codes as c on c.code = e.cpt_code and c.category = 'psychotherapy'
    where e.provider_id not in (select staff_id from stg_staff)
    group by all
),

final as (
    select
        a.patient_id,
        a.program,
        a.service_month,
        a.episode_start_month,
        v.initiating_visit_on,
        not g.requires_initiating_visit or v.initiating_visit_on is not null as initiating_visit_ok,
        n.diagnosis_code,
        -- any mental, behavioral or substance-use condition (ICD-10 F codes, plus listed prefixes)
        not g.requires_bh_diagnosis or exists (
            select 1 from ref_diagnosis_codes as d where upper(n.diagnosis_code) like d.code_prefix || '%'
        ) as diagnosis_ok,
        not g.measurement_based_care
            or coalesce(sc.scale_in_initial_month and sc.scale_in_lookback, false) as measurement_ok,
        g.measurement_based_care and m.measurement_based_care_gate as measurement_is_gate,
        g.checks_outside_therapy and coalesce(o.encounters, 0) > 0 and not n.non_duplicative_care_documented
            as double_billing_risk
    from anchored as a
    inner join months as m using (patient_id, program, service_month)
    inner join ref_programs as g on g.program = a.program
    inner join stg_enrollments as n on n.enrollment_id = a.enrollment_id
    left join initiating_visits as v using (patient_id, program, service_month)
    left join scales as sc using (patient_id, program, service_month)
    left join outside_therapy as o on o.patient_id = a.patient_id and o.service_month = a.service_month
)

select * from final
