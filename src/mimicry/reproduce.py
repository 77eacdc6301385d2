"""Reproducibility check: run the workflow twice from scratch and compare every output.

    python -m mimicry.reproduce --configfile config/quick.yaml --cores 2

Prints a manifest (path, sha256) of every file under results/ and resources/ except
results/benchmarks/ (timings are measurements, not results), and the paths whose bytes
differ between the runs; exits 1 if any differ or exist in only one run, or if a run's
results differ from the results/manifest.tsv it wrote (mimicry.reporting.manifest).
"""

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from mimicry.devtools import copy_workflow, run_snakemake
from mimicry.reporting import manifest as results_manifest
from mimicry.reporting.report import write_report

COMPARED_DIRS = ("results", "resources")
EXCLUDED_DIRS = (Path("results") / "benchmarks",)
REPORT = "results/report.html"


def manifest(workdir):
    """Relative path -> sha256 of every compared output file."""
    digests = {}
    for top in COMPARED_DIRS:
        for path in sorted((workdir / top).rglob("*")):
            relative = path.relative_to(workdir)
            if path.is_file() and not any(
                relative.is_relative_to(excluded) for excluded in EXCLUDED_DIRS
            ):
                digests[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def run_from_scratch(workdir, snakemake_args):
    copy_workflow(workdir)
    run_snakemake(workdir, *snakemake_args)
    write_report(REPORT, snakemake_args, cwd=workdir)
    results_manifest.add([REPORT], workdir)
    return manifest(workdir)


def differences(first, second):
    """Paths whose content differs or that only one run wrote."""
    return sorted(
        path
        for path in first.keys() | second.keys()
        if first.get(path) != second.get(path)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/quick.yaml")
    parser.add_argument("--cores", default="2")
    args = parser.parse_args(argv)
    snakemake_args = ["--cores", args.cores, "--configfile", args.configfile]
    with tempfile.TemporaryDirectory() as scratch:
        first = run_from_scratch(Path(scratch) / "first", snakemake_args)
        second = run_from_scratch(Path(scratch) / "second", snakemake_args)
        unlike = [
            line
            for run in ("first", "second")
            for line in results_manifest.difference_lines(Path(scratch) / run)
        ]
    for path, digest in sorted(first.items()):
        print(f"{digest}  {path}")
    changed = differences(first, second)
    for path in changed:
        print(
            f"DIFFERS: {path}: {first.get(path, 'missing')} vs {second.get(path, 'missing')}"
        )
    for line in unlike:
        print(f"UNLIKE ITS MANIFEST: {line}")
    print(f"{len(first)} files compared, {len(changed)} differ")
    return 1 if changed or unlike else 0


if __name__ == "__main__":
    sys.exit(main())
