import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.download import download, extract_member
from mimicry.logs import configure_logging

configure_logging()
source = snakemake.params.source
if "archive" in snakemake.input.keys():
    extract_member(
        snakemake.input.archive,
        source["member"],
        snakemake.output.recording,
        sha256=source["sha256"],
        participant=snakemake.wildcards.participant,
    )
else:
    download(
        source["url"],
        snakemake.output.recording,
        sha256=source["sha256"],
        participant=snakemake.wildcards.participant,
        **snakemake.params.settings,
    )
