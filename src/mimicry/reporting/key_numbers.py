"""A run's key numbers, and their comparison with an expected file.

    python -m mimicry.reporting.key_numbers write results config/expected/quick.tsv
    python -m mimicry.reporting.key_numbers check results config/expected/quick.tsv

The key numbers: per group x muscle x condition the participants, their trials and the
mean of their cells (results/aggregate/cells.parquet); the mixed models' mimicry and
drug contrasts and likelihood-ratio tests (results/stats/); the drug model's posterior
means of its drug contrasts (results/models/drug/posterior.nc). The expected file
holds each number with the tolerance it is compared within, and states each kind's
tolerance and why in its header. `check` prints "reproduced", or one line per number
outside its tolerance, missing from the run or not expected, and exits 1.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import pandas as pd

from mimicry.bayes.summaries import CONTRASTS
from mimicry.io.result_files import read_netcdf, read_parquet, read_tsv

CELLS = Path("aggregate") / "cells.parquet"
STATS = Path("stats")
DRUG_POSTERIOR = Path("models") / "drug" / "posterior.nc"
COLUMNS = ["kind", "number", "value", "tolerance"]


@dataclass(frozen=True)
class Tolerance:
    """A number is reproduced when |got - expected| <= max(absolute, relative x
    |expected|, mcse_multiple x its Monte Carlo standard error)."""

    absolute: float
    relative: float
    mcse_multiple: float
    reason: str

    def of(self, value, mcse=0.0):
        return max(self.absolute, self.relative * abs(value), self.mcse_multiple * mcse)

    def statement(self):
        return (
            f"absolute {self.absolute:g}, relative {self.relative:g}, "
            f"{self.mcse_multiple:g} x MCSE: {self.reason}"
        )


TOLERANCES = {
    "count": Tolerance(
        0, 0, 0, "whole numbers; any difference is another exclusion or trial count"
    ),
    "cells_mean": Tolerance(
        1e-9,
        1e-6,
        0,
        "float64 preprocessing; other CPUs and NumPy/SciPy builds change only the "
        "last digits (about 1e-15 relative), a changed step moves far more",
    ),
    "mixed_model": Tolerance(
        1e-5,
        1e-4,
        0,
        "ML fits, deterministic given the cells: changing every cell of the quick "
        "study by 1e-9 of its value moved them by less than 2e-7",
    ),
    "posterior_mean": Tolerance(
        1e-6,
        0,
        5,
        "another machine's round-off sends the chains along other paths, so the "
        "means differ by Monte Carlo error (sd sqrt(2) x MCSE between two runs): "
        "5 x MCSE is passed by chance about once in 2,000 numbers",
    ),
}


def key_numbers(results):
    """kind, number (its name), value and tolerance of every key number of the run
    whose results directory is given."""
    results = Path(results)
    rows = [
        *_cells_numbers(read_parquet(results / CELLS)),
        *_mixed_model_numbers(results / STATS),
        *_posterior_numbers(read_netcdf(results / DRUG_POSTERIOR)),
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(kind, number, value, mcse=0.0):
    return kind, number, value, TOLERANCES[kind].of(value, mcse)


def _name(quantity, **keys):
    return f"{quantity}[{', '.join(f'{key}={value}' for key, value in keys.items())}]"


def _cells_numbers(cells):
    cell = ["group", "muscle", "condition"]
    for group, participants in cells.groupby("group", sort=True)["participant"]:
        yield _row("count", _name("participants", group=group), participants.nunique())
    # n_trials is the same in every bin of a participant's cell: count it once.
    trials = cells.drop_duplicates([*cell, "participant"]).groupby(cell)["n_trials"]
    for (group, muscle, condition), total in trials.sum().items():
        name = _name("trials", group=group, muscle=muscle, condition=condition)
        yield _row("count", name, int(total))
    for (group, muscle, condition), mean in cells.groupby(cell)["y"].mean().items():
        name = _name("cells mean y", group=group, muscle=muscle, condition=condition)
        yield _row("cells_mean", name, float(mean))


def _mixed_model_numbers(stats):
    for table in ("mimicry_contrasts", "drug_contrasts"):
        rows = read_tsv(stats / f"{table}.tsv")
        label = table.replace("_", " ").removesuffix("s")
        for row in rows.itertuples():
            keys = {"muscle": row.muscle, "group": row.group, "contrast": row.contrast}
            for column in ("estimate", "se"):
                name = _name(f"{label} {column}", **keys)
                yield _row("mixed_model", name, float(getattr(row, column)))
    for row in read_tsv(stats / "lrt.tsv").itertuples():
        keys = {"muscle": row.muscle, "test": row.test}
        yield _row("mixed_model", _name("lrt chi2", **keys), float(row.chi2))
        yield _row("count", _name("lrt df", **keys), int(row.df))


def _posterior_numbers(inference_data):
    posterior = inference_data["posterior"]
    for name in CONTRASTS:
        draws = posterior[name]
        means = draws.mean(("chain", "draw")).to_dataframe(name="mean")
        errors = az.mcse(draws, method="mean")[name].to_dataframe(name="mcse")
        for keys, row in means.join(errors).iterrows():
            labels = dict(zip(means.index.names, keys))
            number = _name(f"posterior mean {name}", **labels)
            yield _row("posterior_mean", number, float(row["mean"]), row["mcse"])


def write_expected(results, path, description):
    """The run's key numbers as an expected file, headed by the description and each
    kind's tolerance."""
    numbers = key_numbers(results)
    header = [f"# {line}" for line in description.splitlines()] + [
        "# A number is reproduced when |got - value| <= tolerance, where tolerance is",
        "# max(absolute, relative x |value|, multiple x MCSE), by kind:",
        *(
            f"#   {kind}: {tolerance.statement()}"
            for kind, tolerance in TOLERANCES.items()
        ),
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write("\n".join(header) + "\n")
        numbers.to_csv(out, sep="\t", index=False, float_format="%.17g")
    return numbers


def read_expected(path):
    return pd.read_csv(path, sep="\t", comment="#", dtype={"number": str})


def differences(results, expected_path):
    """One line per key number of the run outside the expected file's tolerance,
    expected but missing from the run, or in the run but not expected."""
    expected = read_expected(expected_path).set_index("number")
    got = key_numbers(results).set_index("number")["value"]
    lines = []
    for number, row in expected.iterrows():
        if number not in got.index:
            lines.append(f"MISSING FROM THE RUN: {row['kind']} {number}")
        elif not abs(got[number] - row["value"]) <= row["tolerance"]:
            lines.append(
                f"DIFFERENT: {row['kind']} {number}: expected {row['value']:.10g}, "
                f"got {got[number]:.10g}, tolerance {row['tolerance']:.3g}"
            )
    lines.extend(
        f"NOT EXPECTED: {number} = {got[number]:.10g}"
        for number in got.index.difference(expected.index, sort=False)
    )
    return lines


def check(results, expected_path, out=None):
    """Print "reproduced" or every difference (to out, or standard output); return
    the exit code (0 or 1)."""
    out = out or sys.stdout
    lines = differences(results, expected_path)
    if lines:
        print("\n".join(lines), file=out)
        print(
            f"{len(lines)} key numbers differ from {expected_path}: not reproduced",
            file=out,
        )
        return 1
    n_numbers = len(read_expected(expected_path))
    print(
        f"reproduced: {n_numbers} key numbers within the tolerances of "
        f"{expected_path}",
        file=out,
    )
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("results", help="a run's results directory")
    parser.add_argument("expected", help="the expected file (TSV)")
    args = parser.parse_args(argv)
    if args.action == "write":
        write_expected(args.results, args.expected, f"Key numbers of {args.results}.")
        return 0
    return check(args.results, args.expected)


if __name__ == "__main__":
    sys.exit(main())
