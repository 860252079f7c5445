-- purpose: the published outcome measures (and the project's GAD-7 analogues) as the outcomes page and
--          the leadership pages show them (docs/outcomes.md): per measure, patients met (n) of the
--          denominator (N), the excluded, the pending and the patients without an index, with the
--          measure's definition and source; for all patients, per facility, per care manager and per
--          month of index. Per patient (fct_outcome_measures); no patient identifiers
-- grain: grouping_level ('total', 'facility', 'care_manager', 'index_month'), its key (facility_id,
--        care_manager_id or index_month), measure
-- upstream: fct_outcome_measures, ref_outcome_measures, stg_staff
with patients as (
    select * from fct_outcome_measures
),

counts as (
    select
        case
            when grouping(facility_id) = 0 then 'facility'
            when grouping(care_manager_id) = 0 then 'care_manager'
            when grouping(index_month) = 0 then 'index_month'
            else 'total'
        end as grouping_level,
        measure,
        facility_id,
        care_manager_id,
        index_month,
        count(*) filter (where met) as met,
        count(*) filter (where in_denominator) as denominator,
        -- judged on the most recent score so far, the window still open (the result may change)
        count(*) filter (where in_denominator and not window_closed) as judged_window_open,
        count(*) filter (where result = 'pending') as pending,
        count(*) filter (where result = 'excluded') as excluded,
        count(*) filter (where result = 'not_in_denominator') as without_index,
        count(*) as patients
    from patients
    group by grouping sets ((measure), (measure, facility_id), (measure, care_manager_id), (measure, index_month))
),

-- every group has a row for every measure (zeros when none of its patients has that diagnosis), the
-- total too: the page's columns line up
groups as (
    select distinct grouping_level, facility_id, care_manager_id, index_month from counts
    union
    select 'total', null, null, null
),

completed as (
    select
        g.grouping_level,
        d.measure,
        g.facility_id,
        g.care_manager_id,
        g.index_month,
        coalesce(c.met, 0) as met,
        coalesce(c.denominator, 0) as denominator,
        coalesce(c.judged_window_open, 0) as judged_window_open,
        coalesce(c.pending, 0) as pending,
        coalesce(c.excluded, 0) as excluded,
        coalesce(c.without_index, 0) as without_index,
        coalesce(c.patients, 0) as patients
    from groups as g
    cross join ref_outcome_measures as d
    left join counts as c
        on c.grouping_level = g.grouping_level
        and c.measure = d.measure
        and c.facility_id is not distinct from g.facility_id
        and c.care_manager_id is not distinct from g.care_manager_id
        and c.index_month is not distinct from g.index_month
),

final as (
    select
        g.*,
        -- the group's label on the page (sorts as text; a missing key says so)
        case g.grouping_level
            when 'facility' then coalesce(g.facility_id, 'no facility')
            when 'care_manager' then coalesce(g.care_manager_id, 'no care manager')
            when 'index_month' then coalesce(strftime(g.index_month, '%Y-%m'), 'no index')
            else 'all patients'
        end as group_key,
        round(g.met / nullif(g.denominator, 0), 4) as rate,
        d.display_order,
        d.name as measure_name,
        d.level,
        d.published,
        d.definition,
        d.source,
        d.version,
        s.name as care_manager_name
    from completed as g
    inner join ref_outcome_measures as d using (measure)
    left join stg_staff as s on g.grouping_level = 'care_manager' and s.staff_id = g.care_manager_id
)

select * from final
