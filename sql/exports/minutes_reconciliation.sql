-- purpose: every minute ingested: counted, excluded with a reason, or quarantined
-- grain: reconciliation line
-- upstream: fct_minutes_reconciliation
select * from fct_minutes_reconciliation order by status, minutes desc, reason
