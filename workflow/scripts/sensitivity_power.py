import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from mimicry.io.result_files import read_tsv
from mimicry.logs import configure_logging
from mimicry.robustness.sensitivity import (
    conclusions,
    effect_grid,
    power_table,
    smallest_detectable,
)

configure_logging()
config = snakemake.params.config
replicates = pd.concat(
    (read_tsv(path) for path in snakemake.input.decisions),
    ignore_index=True,
)
power = power_table(replicates, effect_grid(config))
smallest = smallest_detectable(power, config["sensitivity"]["power_target"])
power.to_csv(snakemake.output.power, sep="\t", index=False)
smallest.to_csv(snakemake.output.smallest, sep="\t", index=False)
conclusions(smallest, config).to_csv(
    snakemake.output.conclusions, sep="\t", index=False
)
