"""Input and output: reading raw recordings in every supported format (the reader is
picked in `recordings`), downloading them, BIDS datasets, the raw-content stamps that
notice replaced files, and reading and writing the workflow's result tables.
"""
