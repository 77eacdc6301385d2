import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.simulate import simulate_participant

configure_logging()
simulate_participant(
    snakemake.params.config,
    path=snakemake.output.recording,
    **snakemake.params.recording,
)
