import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.bayes import comparison_table
from mimicry.io.result_files import read_netcdf
from mimicry.logs import configure_logging

configure_logging()
posteriors = {
    model: read_netcdf(path)
    for model, path in zip(snakemake.params.models, snakemake.input.posteriors)
}
comparison_table(posteriors).to_csv(snakemake.output.comparison, sep="\t", index=False)
