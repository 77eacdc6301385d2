import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.preprocess import preprocess_participant, write_outputs

configure_logging()
table, qc = preprocess_participant(
    snakemake.input.recording,
    snakemake.wildcards.participant,
    snakemake.params.settings,
    file_format=snakemake.params.file_format,
    # Only BIDS participants have an events.tsv input.
    events_path=snakemake.input.events or None,
)
write_outputs(table, qc, snakemake.output.table, snakemake.output.qc)
