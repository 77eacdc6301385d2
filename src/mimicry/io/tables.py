"""The workflow's TSV tables read back with their labels exactly as written.

pandas guesses each column's type: participant ids such as 09 would become the number
9 and ids such as NA or nan missing values. Here the label columns (participant ids of
every form the sample-sheet schema allows, and the study's group, muscle and condition
names) are read as text, and only an empty field, which is how ``DataFrame.to_csv``
writes a missing value, is missing.

Imported by the QC figures' jobs, so it imports nothing heavier than pandas.
"""

import pandas as pd

from mimicry.io.result_files import read_result

LABEL_COLUMNS = ("participant", "group", "muscle", "condition")


def read_tsv(path):
    """A tab-separated table the workflow wrote, its label columns as text."""
    return read_result(
        path,
        pd.read_csv,
        sep="\t",
        dtype=dict.fromkeys(LABEL_COLUMNS, str),
        keep_default_na=False,
        na_values=[""],
    )
