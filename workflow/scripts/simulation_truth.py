import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.simulate import write_truth

configure_logging()
write_truth(
    snakemake.output.truth, snakemake.params.config, snakemake.params.participants
)
