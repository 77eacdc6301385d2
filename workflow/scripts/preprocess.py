import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.preprocess import (
    preprocess_recording,
    read_participant_recording,
    write_outputs,
)
from mimicry.spectra import channel_spectra, write_spectra

configure_logging()
settings = snakemake.params.settings
recording = read_participant_recording(
    snakemake.input.recording,
    snakemake.wildcards.participant,
    settings,
    file_format=snakemake.params.file_format,
    # Only BIDS participants have an events.tsv input.
    events_path=snakemake.input.events or None,
)
table, qc = preprocess_recording(
    recording, settings["study"]["conditions"], settings["preprocess"]
)
write_outputs(table, qc, snakemake.output.table, snakemake.output.qc)
write_spectra(
    channel_spectra(recording, settings["preprocess"]), snakemake.output.spectra
)
