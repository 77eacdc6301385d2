import sys

sys.stderr = open(snakemake.log[0], "w")

import json

from mimicry.io.result_files import read_parquet
from mimicry.logs import configure_logging
from mimicry.robustness.sensitivity import (
    analysed_design,
    bin_noise_sd,
    participant_columns,
)

configure_logging()
cells = read_parquet(snakemake.input.cells)
study = snakemake.params.study
design = {
    "participants": analysed_design(cells, study["design"]),
    "bin_noise_sd": bin_noise_sd(cells, study),
}
columns = participant_columns(cells, study)
if columns:
    design["participant_columns"] = columns
with open(snakemake.output.design, "w") as stream:
    json.dump(design, stream, indent=1)
