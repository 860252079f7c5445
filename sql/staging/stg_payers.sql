-- purpose: payer rule settings in force by period: the shipped reference payers, where a payers
--          extract names a payer it replaces that payer's shipped rows (empty settings fall back to
--          the shipped row, then to the documented defaults in ref_settings)
-- grain: payer_id, effective_from
-- upstream: ref_payers, raw_payers, ref_settings
with shipped as (
    select * from ref_payers
),

delivered as (
    select * from raw_payers
    qualify row_number() over (partition by payer_id order by delivery_seq desc, source_row desc) = 1
),

defaults as (
    select
        max(value) filter (where setting = 'default_count_consultant_time')::boolean as count_consultant_time,
        max(value) filter (where setting = 'default_episode_break_months')::integer as episode_break_months,
        max(value) filter (where setting = 'default_date_of_service_policy') as date_of_service_policy,
        max(value) filter (where setting = 'default_consultant_case_review_documents_review')::boolean
            as consultant_case_review_documents_review
    from ref_settings
),

latest_shipped as (
    select * from shipped
    qualify row_number() over (partition by payer_id order by effective_from desc) = 1
),

overridden as (
    select
        d.payer_id,
        coalesce(d.name, s.name, d.payer_id) as name,
        d.rule_set,
        coalesce(d.count_consultant_time, s.count_consultant_time, x.count_consultant_time)
            as count_consultant_time,
        coalesce(d.max_add_on_units, s.max_add_on_units) as max_add_on_units,
        coalesce(s.episode_break_months, x.episode_break_months) as episode_break_months,
        coalesce(s.date_of_service_policy, x.date_of_service_policy) as date_of_service_policy,
        s.max_initial_months_per_year,
        coalesce(s.measurement_based_care_gate, false) as measurement_based_care_gate,
        coalesce(s.expected_denial_rate, 0) as expected_denial_rate,
        coalesce(s.patient_coinsurance_share, 0) as patient_coinsurance_share,
        coalesce(s.consultant_case_review_documents_review::boolean, x.consultant_case_review_documents_review)
            as consultant_case_review_documents_review,
        date '1900-01-01' as effective_from,
        null::date as effective_to,
        'payers extract ' || d.source_file as origin
    from delivered as d
    cross join defaults as x
    left join latest_shipped as s using (payer_id)
),

kept as (
    select
        s.payer_id,
        s.name,
        s.rule_set,
        coalesce(s.count_consultant_time, x.count_consultant_time) as count_consultant_time,
        s.max_add_on_units,
        coalesce(s.episode_break_months, x.episode_break_months) as episode_break_months,
        coalesce(s.date_of_service_policy, x.date_of_service_policy) as date_of_service_policy,
        s.max_initial_months_per_year,
        coalesce(s.measurement_based_care_gate, false) as measurement_based_care_gate,
        coalesce(s.expected_denial_rate, 0) as expected_denial_rate,
        coalesce(s.patient_coinsurance_share, 0) as patient_coinsurance_share,
        coalesce(s.consultant_case_review_documents_review::boolean, x.consultant_case_review_documents_review)
            as consultant_case_review_documents_review,
        s.effective_from,
        s.effective_to,
        'data/reference/payers.csv' as origin
    from shipped as s
    cross join defaults as x
    where s.payer_id not in (select payer_id from delivered)
),

final as (
    select * from kept
    union all
    select * from overridden
)

select * from final
