import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.io.result_files import read_netcdf
from mimicry.io.tables import read_tsv
from mimicry.plots.figures import STYLE, figure3
from mimicry.plots.style import save_figure

figure, table = figure3(
    read_netcdf(snakemake.input.drug),
    read_tsv(snakemake.input.contrasts),
    snakemake.params.study,
    snakemake.params.window_end_s,
)
save_figure(figure, STYLE, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
