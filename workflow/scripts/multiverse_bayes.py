import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.robustness.multiverse_analysis import read_universe_job
from mimicry.robustness.multiverse_bayes import universe_bayes_contrasts

configure_logging()
universe, settings, cells = read_universe_job(
    snakemake.input.settings, snakemake.input.tables, snakemake.input.qc
)
universe_bayes_contrasts(
    universe,
    cells,
    settings["study"],
    snakemake.params.models,
    {**snakemake.params.sampler, "parallel_chains": snakemake.threads},
    snakemake.input.program,
).to_csv(snakemake.output.contrasts, sep="\t", index=False)
