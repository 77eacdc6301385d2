import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from mimicry.config.study_section import mimicry_contrast
from mimicry.io.result_files import read_parquet
from mimicry.logs import configure_logging
from mimicry.stats.frequentist import fit_mixed_models, write_tables

configure_logging()
study = snakemake.params.study
tables = fit_mixed_models(
    read_parquet(snakemake.input.cells),
    groups=study["groups"],
    reference_group=study["reference_group"],
    conditions=study["conditions"],
    random_effects=snakemake.params.random_effects,
    mimicry_contrast=mimicry_contrast(study),
    design=study["design"],
    participant_factor=study["participant_factor"],
)
write_tables(tables, Path(snakemake.output.lrt).parent)
