import sys

sys.stderr = open(snakemake.log[0], "w")

import logging

from mimicry.io.result_files import read_netcdf, read_parquet
from mimicry.logs import configure_logging
from mimicry.plots.figures import STYLE, figure2
from mimicry.plots.style import save_figure

configure_logging()
figure, table, n_outside = figure2(
    read_parquet(snakemake.input.cells),
    read_netcdf(snakemake.input.prior),
    read_netcdf(snakemake.input.pooled),
    snakemake.params.study,
    n_prior_curves=snakemake.params.settings["prior_curves"],
)
logging.info("panel C: %d participant means beyond the axes", n_outside)
save_figure(figure, STYLE, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
