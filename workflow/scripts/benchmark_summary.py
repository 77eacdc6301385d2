import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

from mimicry.reporting.rule_benchmarks import read_benchmarks, summarize

# The summary sits in the folder of the benchmark files it reads.
directory = Path(snakemake.output.summary).parent
rows = read_benchmarks(directory, exclude=[snakemake.rule])
summarize(rows).to_csv(snakemake.output.summary, sep="\t", index=False)
