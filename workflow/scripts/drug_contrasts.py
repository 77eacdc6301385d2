import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.bayes import contrasts_table
from mimicry.io.result_files import read_netcdf
from mimicry.logs import configure_logging

configure_logging()
inference_data = read_netcdf(snakemake.input.posterior)
table = contrasts_table(
    inference_data,
    snakemake.params.rope,
    snakemake.params.reference_group,
    snakemake.params.mimicry_conditions,
)
table.to_csv(snakemake.output.contrasts, sep="\t", index=False)
