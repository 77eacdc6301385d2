"""The run's report and its record: the HTML report (Snakemake's, with the methods text
generated from the config), the results manifest that `make verify` checks, and the
per-rule time and memory totals the report shows.
"""
