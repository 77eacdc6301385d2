import sys

sys.stderr = open(snakemake.log[0], "w")

import json

from mimicry.logs import configure_logging
from mimicry.multiverse import Universe
from mimicry.multiverse_analysis import read_universe, universe_contrasts

configure_logging()
with open(snakemake.input.settings) as handle:
    settings = json.load(handle)
universe = Universe(**settings["universe"])
trials, qcs = read_universe(universe.id, snakemake.input.tables, snakemake.input.qc)
universe_contrasts(
    universe,
    trials,
    qcs,
    settings["groups"],
    settings["study"],
    settings["random_effects"],
).to_csv(snakemake.output.contrasts, sep="\t", index=False)
