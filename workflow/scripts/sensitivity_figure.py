import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from mimicry.figures import power_figure, save_figure

figure, _ = power_figure(
    pd.read_csv(snakemake.input.power, sep="\t"), snakemake.params.power_target
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
