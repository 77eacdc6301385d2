import sys

sys.stderr = open(snakemake.log[0], "w")

import arviz as az

from mimicry.figures import figure3, save_figure
from mimicry.tables import read_tsv

figure, table = figure3(
    az.from_netcdf(snakemake.input.drug),
    read_tsv(snakemake.input.contrasts),
    snakemake.params.study,
    snakemake.params.window_end_s,
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
