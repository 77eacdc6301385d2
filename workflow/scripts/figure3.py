import sys

sys.stderr = open(snakemake.log[0], "w")

import arviz as az
import pandas as pd

from mimicry.figures import figure3, save_figure

figure, table = figure3(
    az.from_netcdf(snakemake.input.drug),
    pd.read_csv(snakemake.input.contrasts, sep="\t"),
    snakemake.params.study,
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
