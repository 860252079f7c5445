-- purpose: months whose time-entry data is incomplete (a rejected file, a gap, low volume): never read
--          such a month as a $0 month
-- grain: service month
-- upstream: fct_month_completeness
select strftime(service_month, '%Y-%m') as service_month, month_status, is_incomplete,
       incomplete_reasons, entries, business_days, business_days_with_entries,
       longest_gap_business_days, rejected_files
from fct_month_completeness order by service_month
