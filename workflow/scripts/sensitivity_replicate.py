import sys

sys.stderr = open(snakemake.log[0], "w")

import logging

from mimicry.io.result_files import read_json
from mimicry.logs import configure_logging
from mimicry.robustness.sensitivity import (
    analyse_replicate,
    effects_by_id,
    fits_drug_model,
    replicate_cells,
    replicate_seed,
    sweep_sampler,
)

configure_logging()
config = snakemake.params.config
effect = effects_by_id(config)[snakemake.wildcards.effect]
replicate = int(snakemake.wildcards.replicate)
design = read_json(snakemake.input.design)
cells = replicate_cells(config, design, effect, replicate)
logging.info("replicate %d of %s: %d rows", replicate, effect.id, len(cells))
sampler = (
    sweep_sampler(config, replicate_seed(config, replicate))
    if fits_drug_model(config, replicate)
    else None
)
decisions = analyse_replicate(cells, config, effect, sampler)
decisions.insert(0, "replicate", replicate)
decisions.insert(0, "effect", effect.id)
decisions.to_csv(snakemake.output.decisions, sep="\t", index=False)
