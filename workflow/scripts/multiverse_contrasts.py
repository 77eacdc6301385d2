import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from mimicry.io.result_files import read_tsv
from mimicry.robustness.multiverse_analysis import robustness_summary, variance_by_axis

contrasts = pd.concat(
    [read_tsv(path) for path in snakemake.input.universes],
    ignore_index=True,
)
contrasts.to_csv(snakemake.output.contrasts, sep="\t", index=False)
shares = variance_by_axis(contrasts, snakemake.params.axes)
shares.to_csv(snakemake.output.variance, sep="\t", index=False)
robustness_summary(contrasts, shares, snakemake.params.alpha).to_csv(
    snakemake.output.summary, sep="\t", index=False
)
