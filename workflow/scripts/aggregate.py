import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.aggregate import (
    aggregate,
    qc_warnings,
    read_participant_outputs,
    write_outputs,
)
from mimicry.logs import configure_logging

configure_logging()
trials, qcs = read_participant_outputs(snakemake.input.tables, snakemake.input.qc)
cells, trials, qc_table = aggregate(
    trials,
    qcs,
    snakemake.params.groups,
    snakemake.params.missing,
    snakemake.params.warn_excluded_share,
    snakemake.params.fields,
)
write_outputs(
    cells,
    trials,
    qc_table,
    snakemake.output.cells,
    snakemake.output.trials,
    snakemake.output.qc,
)
qc_warnings(qc_table).to_csv(snakemake.output.warnings, sep="\t", index=False)
