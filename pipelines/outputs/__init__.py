"""Outputs: what a run hands to people, written from the marts. No Dagster here.

- exports: the CSV exports and the evidence trail
- publication: a run's outputs written aside and published with one swap
- close: the month-end close (closed months' claims, evidence, 837P files)
- explain: `bhi explain`, one patient-month's account (gates, entries, thresholds, next code)
"""
