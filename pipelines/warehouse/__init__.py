"""The warehouse: seeding the reference data, loading the SQL models under sql/ (header, upstream
tables, dependency order), building them in full or for the incremental scope of a nightly run,
and the run state kept between runs (run parameters, the claims baseline). No Dagster here.

- reference: data/reference/*.csv seeded as ref_* tables
- models: the SQL model loader, ordering and (incremental) materialization
- scope: what changed since the last build, and the record of each build
- run_state: run parameters and the claims baseline that `claims_changes.csv` compares against
"""
