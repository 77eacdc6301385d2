import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.io.result_files import read_tsv
from mimicry.plots.figures import STYLE, specification_curve
from mimicry.plots.style import save_figure

figure, _ = specification_curve(
    read_tsv(snakemake.input.contrasts),
    snakemake.params.axes,
    snakemake.wildcards.contrast,
    snakemake.wildcards.group,
    snakemake.params.alpha,
)
save_figure(figure, STYLE, snakemake.output.png, snakemake.output.pdf)
