import sys

sys.stderr = open(snakemake.log[0], "w")

from mimicry.config.sample_sheet import sheet_url
from mimicry.io.download import RETRY_KEYS, download, extract_member
from mimicry.logs import configure_logging

configure_logging()
source = snakemake.params.source
recording = snakemake.wildcards.recording
settings = snakemake.params.settings
limit = {"max_mb": settings["max_file_mb"], "max_mb_key": "download.max_file_mb"}
if "archive" in snakemake.input.keys():
    extract_member(
        snakemake.input.archive,
        source["member"],
        snakemake.output.recording,
        sha256=source["sha256"],
        participant=recording,
        **limit,
    )
else:
    download(
        # The real url, not params.source's, which is redacted.
        sheet_url(snakemake.params.sheet, recording),
        snakemake.output.recording,
        sha256=source["sha256"],
        participant=recording,
        **limit,
        **{key: settings[key] for key in RETRY_KEYS},
    )
