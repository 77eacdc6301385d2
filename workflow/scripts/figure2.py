import sys

sys.stderr = open(snakemake.log[0], "w")

import logging

from mimicry.figures import figure2, save_figure
from mimicry.logs import configure_logging
from mimicry.io.result_files import read_netcdf, read_parquet

configure_logging()
figure, table, n_outside = figure2(
    read_parquet(snakemake.input.cells),
    read_netcdf(snakemake.input.prior),
    read_netcdf(snakemake.input.pooled),
    snakemake.params.study,
    n_prior_curves=snakemake.params.settings["prior_curves"],
)
logging.info("panel C: %d participant means beyond the axes", n_outside)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
