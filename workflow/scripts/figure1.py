import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.io.result_files import read_parquet
from mimicry.plots.figures import STYLE, figure1
from mimicry.plots.style import save_figure

figure, table = figure1(read_parquet(snakemake.input.cells), snakemake.params.study)
save_figure(figure, STYLE, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
