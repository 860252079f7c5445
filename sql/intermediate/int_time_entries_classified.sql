-- purpose: decide for every delivered time-entry version whether its minutes count toward a bundle,
--          and if not, the one reason why ("why are my minutes not counting?"); then never count
--          the same clock minute twice, whatever the entry ids or the file order (billing-rules.md
--          section 2):
--          1. a countable minute that overlaps a non-countable activity of the same person
--             (psychotherapy, crisis, clerical, time linked to a billed encounter) never counts;
--          2. one person's clock minute counts at most once across all their patients, and one
--             patient's clock minute (program) at most once across all staff (one meeting logged by
--             two people): a shared minute goes to the entry that started first, then the longer
--             entry, then the lower patient_id, program and activity (entry_id decides only between
--             entries identical in all of these, which bill the same)
--          Entries crossing midnight (23:30-00:30) end on the next day.
-- grain: one row per delivered time-entry version (entry_id, delivery_seq, source_row)
-- incremental: entry (a nightly run reclassifies only the versions in scope_entries)
-- upstream: stg_time_entries, stg_enrollments, stg_enrollment_payers, stg_staff, stg_payers,
--           stg_encounters, ref_activities, ref_roles, ref_encounter_codes, int_covered_periods,
--           run_parameters
with entries as (
    select * from stg_time_entries
),

params as (
    select as_of from run_parameters
),

-- the enrollment (program episode owner) active on the service date; an entry that names its
-- program only matches that program's enrollment
-- (most patients have one enrollment: only the others need a choice, the latest enrollment wins)
enrollment_counts as (
    select
        e.patient_id,
        count(*) as enrollments,
        min(e.enrolled_on) as first_enrolled_on,
        -- the covered period of the patient's facility (the latest enrollment's, int_covered_periods);
        -- two enrollments on one day: the program last in name order, as `matched` and int_covered_periods
        arg_max(c.covered_from, (e.enrolled_on, e.program)) as covered_from
    from stg_enrollments as e
    left join int_covered_periods as c using (facility_id)
    group by all
),

candidates as (
    select
        t.*,
        n.enrollment_id,
        n.program,
        n.payer_id,
        n.facility_id,
        n.consent_on,
        n.billing_provider_id,
        n.enrolled_on,
        n.discharged_on as enrollment_discharged_on,
        c.first_enrolled_on,
        c.covered_from,
        coalesce(c.enrollments, 0) > 1 as several_enrollments
    from entries as t
    left join enrollment_counts as c using (patient_id)
    left join stg_enrollments as n
        on n.patient_id = t.patient_id
        and t.service_date >= n.enrolled_on
        and (n.discharged_on is null or t.service_date <= n.discharged_on)
        and (t.entry_program is null or t.entry_program = n.program)
),

matched as (
    select * exclude (enrolled_on, several_enrollments) from candidates
    where not several_enrollments
    union all
    select * exclude (enrolled_on, several_enrollments) from candidates
    where several_enrollments
    qualify row_number() over (
        partition by entry_id, delivery_seq, source_row order by enrolled_on desc nulls last, program desc
    ) = 1
),

-- the payer of the entry's month: the enrollment's coverage in force on the month's last day of
-- service (stg_enrollment_payers, as int_episodes), else the enrollment's latest payer (payer_from
-- is unique within an enrollment: stg_enrollment_payers' grain)
month_coverage as (
    select k.enrollment_id, k.service_month, arg_max(c.payer_id, c.payer_from) as payer_id
    from (select distinct enrollment_id, service_month, enrollment_discharged_on from matched) as k
    inner join stg_enrollment_payers as c
        on c.enrollment_id = k.enrollment_id
        and c.payer_from <= least(last_day(k.service_month), k.enrollment_discharged_on)
    group by all
),

with_rules as (
    select
        m.* exclude (enrollment_discharged_on) replace (coalesce(v.payer_id, m.payer_id) as payer_id),
        s.role,
        a.exclusion_reason as activity_exclusion,
        a.counts as activity_counts,
        r.counts_when,
        p.rule_set,
        p.count_consultant_time,
        coalesce(c.separately_billed, false) as linked_encounter_billed,
        x.cpt_code as linked_cpt_code
    from matched as m
    left join month_coverage as v using (enrollment_id, service_month)
    left join stg_staff as s using (staff_id)
    left join ref_activities as a using (activity)
    left join ref_roles as r on r.role = s.role and r.program = m.program
    left join stg_payers as p
        on p.payer_id = coalesce(v.payer_id, m.payer_id)
        and m.service_month >= p.effective_from
        and (p.effective_to is null or m.service_month <= p.effective_to)
    left join stg_encounters as x using (encounter_id)
    left join ref_encounter_codes as c on c.code = x.cpt_code
),

classified as (
    select
        *,
        -- first matching reason wins; the order is the audit story told to analysts
        case
            when version_rank > 1 then 'superseded_by_later_delivery'
            -- the source system voided the entry (its latest delivery says deleted)
            when is_deleted then 'voided_in_source'
            -- dated before the facility's covered period (a typo, a 1900-01-01 default): reported, and
            -- it does not move the first month the extracts cover
            when service_month < covered_from then 'before_covered_period'
            -- no enrollment covers the service date: never enrolled, before the first enrollment,
            -- or after a discharge / between enrollments
            when enrollment_id is null and first_enrolled_on is null then 'patient_not_enrolled'
            when enrollment_id is null and service_date < first_enrolled_on then 'service_before_enrollment'
            when enrollment_id is null then 'no_active_enrollment'
            when service_date > (select as_of from params) then 'after_as_of_date'
            when role is null then 'unknown_staff'
            when not activity_counts then activity_exclusion
            -- time documented as part of a separately billed encounter (psychotherapy, E/M ...)
            when linked_encounter_billed then 'linked_to_billed_encounter'
            -- psychiatric consultant minutes are paid inside the code unless the payer counts them
            when counts_when = 'payer_counts_consultant_time' and not coalesce(count_consultant_time, false)
                then 'consultant_time_not_counted_by_payer'
            -- a role whose minutes count only as the billing provider's own time (G0323: the clinician's
            -- own time): another staff member of that role does not count
            when counts_when = 'billing_provider_own_time' and staff_id is distinct from billing_provider_id
                then 'not_billing_providers_own_time'
            when counts_when is null
                or counts_when not in ('always', 'payer_counts_consultant_time', 'billing_provider_own_time')
                then 'non_counting_role'
            -- time before the consent date never counts
            when consent_on is null then 'no_consent_on_file'
            when service_date < consent_on then 'before_consent'
        end as exclusion_reason
    from with_rules
),

flagged as (
    select
        *,
        exclusion_reason is null as is_counted,
        exclusion_reason is null
        or exclusion_reason in ('no_consent_on_file', 'before_consent') as counts_if_consented,
        -- the live version's clock interval, where both times are given; an end before the start
        -- crosses midnight (the entry ends on the next day)
        case
            when version_rank = 1 and not is_deleted and end_time <> start_time then service_date + start_time
        end as starts_at,
        case
            when version_rank = 1 and not is_deleted and end_time <> start_time
                then service_date + end_time + case when end_time < start_time then interval 1 day else interval 0 day end
        end as ends_at,
        -- a non-countable activity of the person: no countable minute of theirs overlapping it counts
        coalesce(not activity_counts, false) or linked_encounter_billed as blocks_countable_time
    from classified
),

-- narrow rows for the overlap rules (what keeps them fast at 10M entries): only entries with a clock
-- interval take part
timed as (
    select entry_id, delivery_seq, source_row, staff_id, patient_id, program, activity, starts_at, ends_at,
           counts_if_consented, blocks_countable_time
    from flagged
    where starts_at is not null
),

-- rule 1: the union of each person's non-countable intervals, as disjoint islands (gaps and islands)
blocking as (
    select
        staff_id, starts_at, ends_at,
        max(ends_at) over (
            partition by staff_id order by starts_at, ends_at rows between unbounded preceding and 1 preceding
        ) as previous_end
    from timed
    where blocks_countable_time
),

blocking_numbered as (
    select
        *,
        sum(case when previous_end is null or starts_at > previous_end then 1 else 0 end) over (
            partition by staff_id order by starts_at, ends_at rows between unbounded preceding and current row
        ) as island
    from blocking
),

islands as (
    select staff_id, island, min(starts_at) as island_start, max(ends_at) as island_end
    from blocking_numbered
    group by all
),

-- rule 2: among countable entries (countable but for consent) sharing a minute, the first in content
-- order keeps it. Every entry ordered before this one starts no later, so the minutes they hold of
-- this entry's interval are a prefix [start, max of their ends): what remains is [remaining_from, end)
countable_windows as (
    select
        entry_id, delivery_seq, source_row, staff_id, starts_at, ends_at,
        max(ends_at) over (
            partition by staff_id
            order by starts_at, ends_at desc, patient_id, program, activity, entry_id
            rows between unbounded preceding and 1 preceding
        ) as staff_busy_until,
        max(ends_at) over (
            partition by patient_id, program
            order by starts_at, ends_at desc, staff_id, activity, entry_id
            rows between unbounded preceding and 1 preceding
        ) as patient_busy_until
    from timed
    where counts_if_consented
),

countable as (
    select
        entry_id, delivery_seq, source_row, staff_id, starts_at, ends_at,
        -- greatest() skips NULLs in DuckDB: no entry ahead means nothing taken
        greatest(starts_at, staff_busy_until, patient_busy_until) as remaining_from,
        -- the staff prefix alone: tells a same-staff overlap from one meeting logged by two people
        greatest(starts_at, staff_busy_until) as staff_remaining_from
    from countable_windows
),

-- the calendar days an island or an entry touches (an entry spans at most two), so the range join
-- below matches on person and day, never on a person's whole history
island_days as (
    select
        staff_id, island, island_start, island_end,
        unnest(generate_series(date_trunc('day', island_start), date_trunc('day', island_end), interval 1 day))::date
            as day
    from islands
),

countable_days as (
    select
        *,
        unnest(case
            when date_trunc('day', ends_at) > date_trunc('day', starts_at) then [starts_at::date, ends_at::date]
            else [starts_at::date]
        end) as day
    from countable
),

-- each (entry, island) pair once, even when both span two days
blocked_pairs as (
    select distinct
        c.entry_id, c.delivery_seq, c.source_row, c.starts_at, c.ends_at, c.remaining_from, i.island,
        i.island_start, i.island_end
    from countable_days as c
    inner join island_days as i
        on i.staff_id = c.staff_id
        and i.day = c.day
        and i.island_start < c.ends_at
        and i.island_end > c.starts_at
),

-- minutes of the remaining part (and of the whole interval) inside the person's non-countable islands
blocked as (
    select
        entry_id, delivery_seq, source_row,
        sum(greatest(0, date_diff('minute', greatest(remaining_from, island_start), least(ends_at, island_end))))
            as blocked_remaining,
        sum(greatest(0, date_diff('minute', greatest(starts_at, island_start), least(ends_at, island_end))))
            as blocked_total
    from blocked_pairs
    group by all
),

entry_overlaps as (
    select
        c.entry_id, c.delivery_seq, c.source_row,
        date_diff('minute', c.starts_at, c.ends_at) as interval_minutes,
        greatest(0, date_diff('minute', c.remaining_from, c.ends_at)) - coalesce(b.blocked_remaining, 0)
            as interval_counted,
        coalesce(b.blocked_total, 0) as blocked_minutes,
        date_diff('minute', c.starts_at, least(c.staff_remaining_from, c.ends_at)) as staff_prefix_minutes,
        date_diff('minute', c.starts_at, least(c.remaining_from, c.ends_at)) as prefix_minutes
    from countable as c
    left join blocked as b using (entry_id, delivery_seq, source_row)
),

joined as (
    select
        f.*,
        -- minutes of the entry taken off as overlap (never more than the minutes logged)
        -- (least() skips NULLs in DuckDB: an entry without a clock interval loses nothing)
        case
            when o.entry_id is null then 0
            else least(f.minutes, o.interval_minutes - o.interval_counted)::integer
        end as lost_minutes,
        o.blocked_minutes,
        o.staff_prefix_minutes,
        o.prefix_minutes
    from flagged as f
    left join entry_overlaps as o using (entry_id, delivery_seq, source_row)
),

final as (
    select
        * exclude (lost_minutes, blocked_minutes, staff_prefix_minutes, prefix_minutes),
        lost_minutes as overlap_minutes,
        -- the reason that took the most minutes (a non-countable activity first on a tie)
        case
            when lost_minutes = 0 then null
            when blocked_minutes > 0 and blocked_minutes >= prefix_minutes then 'overlaps_non_countable_activity'
            when staff_prefix_minutes >= prefix_minutes then 'overlapping_time_same_staff'
            else 'same_meeting_logged_twice'
        end as overlap_reason,
        case when is_counted then minutes - lost_minutes else 0 end as counted_minutes,
        case when counts_if_consented then minutes - lost_minutes else 0 end as consentable_minutes
    from joined
)

select * from final
