import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.io.download import RETRY_KEYS, download
from mimicry.logs import configure_logging

configure_logging()
settings = snakemake.params.settings
download(
    # The real url, not params.url, which is redacted.
    snakemake.config["source"]["archive_url"],
    snakemake.output.archive,
    sha256=snakemake.params.sha256,
    participant="study archive",
    sha256_key="source.archive_sha256",
    max_mb=settings["max_archive_mb"],
    max_mb_key="download.max_archive_mb",
    **{key: settings[key] for key in RETRY_KEYS},
)
