"""Ingest: find the extract files of a drop, read them (CSV, TSV, Parquet, XLSX, FHIR NDJSON, a
source profile's mapping), check and type every value, quarantine what cannot be kept, and land the
rest in raw_* tables with a ledger of every file delivered. No Dagster here.

- extract_format: the tables, columns, types and natural keys an extract may hold
- readers: file discovery and bounded-memory reading in batches
- profiles: source profiles (bhi-profile.yaml) that map an EHR's export onto the extract format
- fhir: FHIR Bulk Data NDJSON onto the same tables
- load: load_drop, the typing and quarantine checks, the ingest ledger
"""
