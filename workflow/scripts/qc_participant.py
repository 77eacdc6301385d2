import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.plots.qc_figures import write_participant_figure

configure_logging()
write_participant_figure(
    snakemake.input.spectra,
    snakemake.input.table,
    snakemake.input.qc,
    snakemake.output.png,
    snakemake.params.settings,
)
