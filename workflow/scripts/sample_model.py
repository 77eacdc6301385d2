import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.bayes import build_model_input, sample, write_netcdf
from mimicry.io.result_files import read_parquet
from mimicry.logs import configure_logging

configure_logging()
model_input = build_model_input(
    read_parquet(snakemake.input.cells),
    snakemake.params.study,
    snakemake.params.model,
    snakemake.params.likelihood,
    prior_only=snakemake.params.prior_only,
    rate_deviations=snakemake.params.rate_deviations,
)
settings = {**snakemake.params.sampler, "parallel_chains": snakemake.threads}
inference_data = sample(model_input, settings, snakemake.input.program)
write_netcdf(inference_data, snakemake.output[0], snakemake.params.predictive_draws)
