import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.io.raw_content import write_stamp
from mimicry.logs import configure_logging

configure_logging()
write_stamp(snakemake.output.stamp, snakemake.params.files)
