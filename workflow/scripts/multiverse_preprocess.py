import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.multiverse import Universe
from mimicry.preprocess import (
    combined_universe_outputs,
    preprocess_universes,
    read_participant_recording,
    write_outputs,
)

configure_logging()
settings = snakemake.params.settings
recording = read_participant_recording(
    snakemake.input.recording,
    snakemake.wildcards.participant,
    settings,
    file_format=snakemake.params.file_format,
    events_path=snakemake.input.events or None,
)
grid = [Universe(**universe) for universe in snakemake.params.universes]
results = preprocess_universes(recording, settings["study"]["conditions"], grid)
write_outputs(
    *combined_universe_outputs(results), snakemake.output.table, snakemake.output.qc
)
