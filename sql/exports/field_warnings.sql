-- purpose: bad values in optional columns: the row loaded with that column empty
-- grain: file, row, column
-- upstream: field_warnings
select table_name, source_file, source_row, column_name, reason
from field_warnings order by delivery_seq, source_row, table_name, source_file, column_name
