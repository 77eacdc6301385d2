import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.figures import figure3, save_figure
from mimicry.io.result_files import read_netcdf
from mimicry.io.tables import read_tsv

figure, table = figure3(
    read_netcdf(snakemake.input.drug),
    read_tsv(snakemake.input.contrasts),
    snakemake.params.study,
    snakemake.params.window_end_s,
)
save_figure(figure, snakemake.output.png, snakemake.output.pdf)
table.to_csv(snakemake.output.table, sep="\t", index=False)
