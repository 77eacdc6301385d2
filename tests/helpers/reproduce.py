"""Reproducibility check: run the workflow twice from scratch and compare every output.

    python -m tests.helpers.reproduce --configfile config/quick.yaml --cores 2 \
        --expected config/expected/quick.tsv
    python -m tests.helpers.reproduce --configfile config/quick.yaml --cores 2 \
        --write-expected config/expected/quick.tsv

Prints a manifest (path, sha256) of every file under results/ and resources/ except
results/benchmarks/ (timings are measurements, not results), and the paths whose bytes
differ between the runs; exits 1 if any differ or exist in only one run, or if a run's
results differ from the results/manifest.tsv it wrote (mimicry.reporting.manifest). With
--expected it also compares the first run's key numbers with that file
(mimicry.reporting.key_numbers) and exits 1 on any difference. --write-expected runs
once and writes that run's key numbers instead.

Run from the repository root (make reproduce-check, make expected-numbers).
"""

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

from mimicry.reporting import key_numbers
from mimicry.reporting import manifest as results_manifest
from .devtools import copy_workflow, run_snakemake
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
    numbers = parser.add_mutually_exclusive_group()
    numbers.add_argument(
        "--expected", type=Path, help="key numbers to compare the first run's with"
    )
    numbers.add_argument(
        "--write-expected", type=Path, help="run once and write its key numbers here"
    )
    args = parser.parse_args(argv)
    snakemake_args = ["--cores", args.cores, "--configfile", args.configfile]
    with tempfile.TemporaryDirectory() as scratch:
        first_dir, second_dir = Path(scratch) / "first", Path(scratch) / "second"
        first = run_from_scratch(first_dir, snakemake_args)
        if args.write_expected:
            return write_expected(first_dir / "results", args)
        second = run_from_scratch(second_dir, snakemake_args)
        for path, digest in sorted(first.items()):
            print(f"{digest}  {path}")
        changed = differences(first, second)
        for path in changed:
            print(
                f"DIFFERS: {path}: {first.get(path, 'missing')} vs "
                f"{second.get(path, 'missing')}"
            )
        unlike = [
            line
            for workdir in (first_dir, second_dir)
            for line in results_manifest.difference_lines(workdir)
        ]
        for line in unlike:
            print(f"UNLIKE ITS MANIFEST: {line}")
        print(f"{len(first)} files compared, {len(changed)} differ")
        numbers_differ = bool(
            args.expected and key_numbers.check(first_dir / "results", args.expected)
        )
    return 1 if changed or unlike or numbers_differ else 0


def write_expected(results, args):
    command = (
        f"python -m tests.helpers.reproduce --configfile {args.configfile} "
        f"--write-expected {args.write_expected}"
    )
    numbers = key_numbers.write_expected(
        results,
        args.write_expected,
        f"Key numbers of the workflow run with --configfile {args.configfile}, "
        f"written by\n{command} (make expected-numbers).",
    )
    print(f"{len(numbers)} key numbers written to {args.write_expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
