import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

pd.concat(
    [pd.read_csv(path, sep="\t") for path in snakemake.input.universes],
    ignore_index=True,
).to_csv(snakemake.output.contrasts, sep="\t", index=False)
