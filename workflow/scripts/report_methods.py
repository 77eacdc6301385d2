import sys

sys.stderr = open(snakemake.log[0], "w")

from pathlib import Path

Path(snakemake.output.description).write_text(snakemake.params.text)
