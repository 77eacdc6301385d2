import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from mimicry.figures import save_figure, specification_curve

figure, _ = specification_curve(
    pd.read_csv(snakemake.input.contrasts, sep="\t"),
    snakemake.params.axes,
    snakemake.wildcards.contrast,
    snakemake.wildcards.group,
    snakemake.params.alpha,
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
