import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.figures import figure1, save_figure
from mimicry.io.result_files import read_parquet

figure, table = figure1(read_parquet(snakemake.input.cells), snakemake.params.study)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
