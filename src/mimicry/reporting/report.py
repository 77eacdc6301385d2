"""Snakemake's HTML report without the job timings it embeds.

The report's timeline and runtime charts record when each job ran, so two runs with
identical results would give different reports. The timings are measurements, kept in
results/benchmarks/; the report is written without them:

    python -m mimicry.reporting.report results/report.html [snakemake options ...]

Snakemake renders the captions from the config it is given (and the rule params
derived from it), so pass the run's config files, e.g. ``--configfile
config/quick.yaml``; ``make run CONFIG=...`` does so for both the run and the report.
A config file that is a YTE template (it runs Python when read) is refused unless
``--allow-yte`` is given (mimicry.config.files).
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from mimicry.config.files import (
    ALLOW_YTE_FLAG,
    YteRefused,
    configfiles_in_args,
    refuse_yte,
)

TIMING_CHARTS = ("timeline_spec", "runtimes_spec")


def strip_timings(html):
    """Empty the data of the report's timing charts; fail if the layout changed."""
    for chart in TIMING_CHARTS:
        pattern = re.compile(rf'(var {chart} = .*?"data": {{"values": )\[.*?\]', re.S)
        html, found = pattern.subn(r"\1[]", html, count=1)
        if not found:
            raise ValueError(f"Snakemake's report has no {chart} chart to strip")
    return html


def write_report(path, snakemake_args=(), cwd=None):
    """Run `snakemake --report` into a scratch file and write it to path, timings removed.

    path is relative to cwd (the workflow's directory, default the current one).
    """
    snakemake = Path(sys.executable).with_name("snakemake")
    path = Path(cwd or ".") / path
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "report.html"
        subprocess.run(
            [str(snakemake), "--report", str(raw), *snakemake_args], check=True, cwd=cwd
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(strip_timings(raw.read_text()))


def main(argv):
    """python -m mimicry.reporting.report OUT [--allow-yte] [snakemake options ...]"""
    out, snakemake_args = argv[0], [arg for arg in argv[1:] if arg != ALLOW_YTE_FLAG]
    if ALLOW_YTE_FLAG not in argv:
        try:
            refuse_yte(configfiles_in_args(snakemake_args), "mimicry.reporting.report")
        except YteRefused as error:
            sys.exit(f"mimicry.reporting.report: {error}")
    write_report(out, snakemake_args)


if __name__ == "__main__":
    main(sys.argv[1:])
