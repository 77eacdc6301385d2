import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.figures import power_figure, save_figure
from mimicry.io.result_files import read_tsv

figure, _ = power_figure(read_tsv(snakemake.input.power), snakemake.params.power_target)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
