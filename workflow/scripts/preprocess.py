import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.preprocessing.preprocess import (
    preprocess_recording,
    read_job_recording,
    write_outputs,
)
from mimicry.preprocessing.spectra import channel_spectra, write_spectra

configure_logging()
settings = snakemake.params.settings
recording = read_job_recording(
    snakemake.input, snakemake.wildcards.recording, snakemake.params
)
table, qc = preprocess_recording(
    recording,
    settings["study"]["conditions"],
    settings["preprocess"],
    snakemake.params.limits_cache,
)
write_outputs(table, qc, snakemake.output.table, snakemake.output.qc)
write_spectra(
    channel_spectra(recording, settings["preprocess"]), snakemake.output.spectra
)
