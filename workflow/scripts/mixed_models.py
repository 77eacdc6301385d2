import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from mimicry.io.result_files import read_parquet
from mimicry.logs import configure_logging
from mimicry.stats.frequentist import fit_study_mixed_models, write_tables

configure_logging()
study = snakemake.params.study
tables = fit_study_mixed_models(
    read_parquet(snakemake.input.cells), study, snakemake.params.random_effects
)
write_tables(tables, Path(snakemake.output.lrt).parent)
