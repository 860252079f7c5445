-- purpose: one row per enrolled patient-month: minutes logged, countable and excluded, the episode
--          month type (initial / subsequent, after the payer's once-a-year limit), the payer's rules
--          in force, the enrollment facility's type (facilities extract, else the default_facility_type
--          setting) and the consent and psychiatric-review gates
-- grain: patient_id, program, service_month (the rows of int_episodes)
-- incremental: patient (a nightly run rebuilds only the patients in scope_patients)
-- upstream: int_episodes, int_patient_month_minutes, stg_enrollments, stg_psych_reviews, stg_payers,
--           stg_facilities, ref_programs, ref_settings, run_parameters
with params as (
    select as_of, date_trunc('month', as_of)::date as open_month from run_parameters
),

default_facility as (
    select max(value) as facility_type from ref_settings where setting = 'default_facility_type'
),

reviews as (
    select
        patient_id,
        review_month as service_month,
        count(*) as psych_reviews,
        string_agg(review_id || ' on ' || strftime(review_date, '%Y-%m-%d'), ', ' order by review_date, review_id)
            as review_notes
    from stg_psych_reviews
    group by all
),

final as (
    select
        t.enrollment_id,
        t.patient_id,
        t.program,
        -- the coverage in force on the month's date of service (int_episodes), not the enrollment's
        -- latest payer
        t.payer_id,
        n.facility_id,
        -- a facility not in the facilities extract takes the documented default (physician_office)
        coalesce(f.facility_type, d.facility_type) as facility_type,
        n.billing_provider_id,
        n.enrolled_on,
        n.consent_on,
        n.discharged_on,
        t.enrolled_before_coverage,
        t.service_month,
        coalesce(m.logged_minutes, 0) as logged_minutes,
        coalesce(m.countable_minutes, 0) as countable_minutes,
        coalesce(m.consentable_minutes, 0) as consentable_minutes,
        coalesce(m.excluded_minutes, 0) as excluded_minutes,
        coalesce(m.before_consent_minutes, 0) as before_consent_minutes,
        t.has_service,
        -- documented consultant reviews: review notes, plus the consultant's own case_review time
        -- entries where the payer accepts them (consultant_case_review_documents_review, default on)
        coalesce(v.psych_reviews, 0)
            + case when r.consultant_case_review_documents_review then coalesce(m.consultant_case_reviews, 0) else 0 end
            as psych_reviews,
        concat_ws('; ',
            case when v.psych_reviews > 0 then v.psych_reviews || ' review note(s): ' || v.review_notes end,
            case when m.consultant_case_reviews > 0 and r.consultant_case_review_documents_review
                then m.consultant_case_reviews || ' consultant case-review entry(ies): ' || m.consultant_case_review_entries
            end,
            case when m.consultant_case_reviews > 0 and not r.consultant_case_review_documents_review
                then m.consultant_case_reviews || ' consultant case-review entry(ies) not accepted as review by the payer'
            end
        ) as psych_review_evidence,
        t.care_manager_id,
        r.rule_set,
        r.max_add_on_units,
        r.episode_break_months,
        r.date_of_service_policy,
        r.max_initial_months_per_year,
        r.measurement_based_care_gate,
        r.expected_denial_rate,
        r.patient_coinsurance_share,
        g.has_episodes,
        g.requires_consent,
        g.requires_psych_review,
        t.previous_service_month,
        t.episode_month_type,
        t.earlier_initial_months_in_year,
        -- payers that allow 99492 once per calendar year (max_initial_months_per_year) bill a later
        -- initial month of that year in the subsequent band
        case
            when t.episode_month_type = 'initial'
                and t.earlier_initial_months_in_year >= t.max_initial_months_per_year then 'subsequent'
            else t.episode_month_type
        end as month_type,
        t.episode_number,
        case when t.service_month = p.open_month then 'open' else 'closed' end as month_status,
        last_day(t.service_month) as month_end,
        -- the last day a claim of the month may be dated: the month's last day, or the discharge day
        -- when the patient is discharged in the month (billing-rules.md section 5; least() skips NULLs)
        least(last_day(t.service_month), n.discharged_on) as last_service_day,
        -- consent documented on or before the month's last day
        not g.requires_consent or coalesce(n.consent_on <= last_day(t.service_month), false) as consent_ok,
        -- CoCM needs a documented psychiatric consultant review in the month
        not g.requires_psych_review
            or coalesce(v.psych_reviews, 0)
                + case when r.consultant_case_review_documents_review then coalesce(m.consultant_case_reviews, 0) else 0 end
                > 0 as psych_review_ok
    from int_episodes as t
    cross join params as p
    cross join default_facility as d
    inner join stg_enrollments as n using (enrollment_id)
    inner join ref_programs as g on g.program = t.program
    left join int_patient_month_minutes as m
        on m.patient_id = t.patient_id and m.program = t.program and m.service_month = t.service_month
    left join stg_facilities as f on f.facility_id = n.facility_id
    left join reviews as v on v.patient_id = t.patient_id and v.service_month = t.service_month
    left join stg_payers as r
        on r.payer_id = t.payer_id
        and t.service_month >= r.effective_from
        and (t.service_month <= r.effective_to or r.effective_to is null)
)

select * from final
