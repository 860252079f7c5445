-- purpose: claims of closed months held back from the 837P because a required element is missing
--          or malformed, or a line fails the claim scrub (fct_claim_scrub_findings), with the missing
--          elements and scrub edits named (never the values); a page or worklist can
--          list them for the billing team to fix in the source system
-- grain: claim_id
-- incremental: patient (a claim is one patient's: a nightly run rebuilds only the patients in scope_patients)
-- upstream: fct_x12_claim_lines
with lines as (
    select * from fct_x12_claim_lines
    where claim_missing_elements is not null
),

final as (
    select
        claim_id,
        -- the claim id is a hash of patient, program, month, payer and facility: one value per claim
        any_value(patient_id) as patient_id,
        any_value(payer_id) as payer_id,
        any_value(facility_id) as facility_id,
        any_value(service_month) as service_month,
        string_agg(code, ', ' order by code) as codes,
        sum(expected_amount) as expected_amount,
        -- each missing element named once, however many lines of the claim lack it
        array_to_string(list_sort(list_distinct(flatten(list(string_split(missing_elements, '; '))))), '; ')
            as missing_elements,
        -- the claim scrub edits its lines fail (code: edit other code), none when held for elements only
        string_agg(code || ': ' || scrub_edits, '; ' order by code) filter (where scrub_edits is not null)
            as scrub_edits
    from lines
    group by claim_id
)

select * from final
