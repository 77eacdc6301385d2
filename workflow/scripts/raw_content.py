import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.logs import configure_logging
from mimicry.io.raw_content import write_stamp

configure_logging()
write_stamp(snakemake.output.stamp, snakemake.params.files)
