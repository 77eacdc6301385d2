import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.download import download
from mimicry.logs import configure_logging

configure_logging()
download(
    snakemake.params.url,
    snakemake.output.archive,
    sha256=snakemake.params.sha256,
    participant="study archive",
    sha256_key="source.archive_sha256",
    **snakemake.params.settings,
)
