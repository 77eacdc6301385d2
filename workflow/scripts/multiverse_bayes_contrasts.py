import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from mimicry.io.result_files import read_tsv
from mimicry.robustness.multiverse_bayes import bayes_robustness_summary

contrasts = pd.concat(
    [read_tsv(path) for path in snakemake.input.universes],
    ignore_index=True,
)
contrasts.to_csv(snakemake.output.contrasts, sep="\t", index=False)
bayes_robustness_summary(contrasts).to_csv(
    snakemake.output.summary, sep="\t", index=False
)
