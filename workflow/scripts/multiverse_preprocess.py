import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.preprocessing.preprocess import read_job_recording, write_outputs
from mimicry.robustness.multiverse import Universe
from mimicry.robustness.multiverse_preprocess import (
    combined_universe_outputs,
    preprocess_universes,
)

configure_logging()
recording = read_job_recording(
    snakemake.input, snakemake.wildcards.recording, snakemake.params
)
grid = [Universe(**universe) for universe in snakemake.params.universes]
conditions = snakemake.params.settings["study"]["conditions"]
results = preprocess_universes(
    recording, conditions, grid, snakemake.params.limits_cache
)
write_outputs(
    *combined_universe_outputs(results), snakemake.output.table, snakemake.output.qc
)
