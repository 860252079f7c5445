"""Claims out as ASC X12 837P (005010X222A1) and payments in from X12 835 (005010X221A1).

claims_837.py writes the month-end close's claim files (stable claim ids, replacements and voids),
remittance_835.py reads 835 files dropped with the extracts (parsed by pyx12), validate.py runs
pyx12's implementation-guide validator, sample_835.py writes remittances for the synthetic sample.
"""
