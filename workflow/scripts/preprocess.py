import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.preprocessing.preprocess import preprocess_and_write, read_job_recording

configure_logging()
recording = read_job_recording(
    snakemake.input, snakemake.wildcards.recording, snakemake.params
)
preprocess_and_write(
    recording,
    snakemake.params.settings,
    snakemake.params.limits_cache,
    snakemake.output.table,
    snakemake.output.qc,
    snakemake.output.spectra,
)
