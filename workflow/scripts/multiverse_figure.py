import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.figures import save_figure, specification_curve
from mimicry.io.result_files import read_tsv

figure, _ = specification_curve(
    read_tsv(snakemake.input.contrasts),
    snakemake.params.axes,
    snakemake.wildcards.contrast,
    snakemake.wildcards.group,
    snakemake.params.alpha,
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
