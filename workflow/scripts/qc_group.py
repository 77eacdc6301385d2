import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.plots.qc_figures import write_group_figure

configure_logging()
write_group_figure(
    snakemake.input.qc_table,
    snakemake.input.qc,
    snakemake.output.png,
    snakemake.params.settings,
)
