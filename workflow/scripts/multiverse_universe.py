import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.robustness.multiverse_analysis import read_universe_job, universe_contrasts

configure_logging()
universe, settings, cells = read_universe_job(
    snakemake.input.settings, snakemake.input.tables, snakemake.input.qc
)
universe_contrasts(
    universe, cells, settings["study"], settings["random_effects"]
).to_csv(snakemake.output.contrasts, sep="\t", index=False)
