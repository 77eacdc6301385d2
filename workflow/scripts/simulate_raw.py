import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.simulate import simulate_participant

configure_logging()
# A crossover study's rule gives the participant, the session and its period too.
simulate_participant(
    snakemake.params.config,
    getattr(snakemake.params, "participant_id", snakemake.wildcards.participant),
    snakemake.params.group,
    snakemake.output.recording,
    getattr(snakemake.params, "session", None),
    getattr(snakemake.params, "period", None),
)
