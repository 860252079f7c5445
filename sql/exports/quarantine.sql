-- purpose: rows not loaded and why (file, row, columns, reason, the record capped)
-- grain: quarantined row
-- upstream: quarantine
select table_name, source_file, source_row, columns, left(reason, 2000) as reason, record
from quarantine order by delivery_seq, source_row, table_name, source_file
