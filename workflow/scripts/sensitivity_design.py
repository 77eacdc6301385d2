import sys

sys.stderr = open(snakemake.log[0], "w")

import json

from mimicry.logs import configure_logging
from mimicry.result_files import read_parquet
from mimicry.sensitivity import analysed_design, bin_noise_sd

configure_logging()
cells = read_parquet(snakemake.input.cells)
design = {
    "participants": analysed_design(cells),
    "bin_noise_sd": bin_noise_sd(cells, snakemake.params.study),
}
with open(snakemake.output.design, "w") as stream:
    json.dump(design, stream, indent=1)
