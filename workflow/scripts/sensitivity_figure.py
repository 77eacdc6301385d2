import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.io.result_files import read_tsv
from mimicry.plots.figures import STYLE, power_figure
from mimicry.plots.style import save_figure

figure, _ = power_figure(read_tsv(snakemake.input.power), snakemake.params.power_target)
save_figure(figure, STYLE, snakemake.output.png, snakemake.output.pdf)
