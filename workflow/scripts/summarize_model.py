import sys

sys.stderr = open(snakemake.log[0], "w")

import json

from mimicry.bayes import check_diagnostics, diagnostics, summary_table
from mimicry.io.result_files import read_netcdf
from mimicry.logs import configure_logging

configure_logging()
thresholds = snakemake.params.thresholds
inference_data = read_netcdf(snakemake.input.posterior)
summary = summary_table(inference_data)
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
report = diagnostics(
    inference_data, thresholds, snakemake.params.max_treedepth, summary=summary
)
with open(snakemake.output.diagnostics, "w") as handle:
    json.dump(report, handle, indent=1)
check_diagnostics(report, thresholds["mode"])
