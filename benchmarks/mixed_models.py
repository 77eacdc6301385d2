"""Benchmark the frequentist mixed models against lme4, fit by fit, on one cells table.

    .venv/bin/python benchmarks/mixed_models.py    # ../shared/benchmarks/cells_N130.csv
    .venv/bin/python benchmarks/mixed_models.py --cells results/aggregate/cells.parquet
    .venv/bin/python benchmarks/mixed_models.py --repeats 5    # the fastest of 5 each

Fits every model of every muscle, the full model and each likelihood-ratio test's
reduced model with the default random effects (condition_shape), with
mimicry.stats.mixed_model_fit.fit_mixed_model (reduced models starting from the full
model's covariance parameters, as the workflow fits them) and with lme4
(benchmarks/lme4_matched.R: the same model in lme4 notation, REML = FALSE, lme4's
default optimiser and checks). Prints one row per fit: seconds of ours (around
fit_mixed_model, design matrices included) and of lme4 (inside R, around the lmer call:
not R's start-up or reading the table), their ratio (target <= 2), both
log-likelihoods and their difference, the largest absolute difference between the
fixed effects, and whether each calls the fit singular (ours: the unstructured
participant covariance, on which the workflow would fall back to a simpler structure;
lme4's isSingular also counts a zero shared intercept variance). Then one row per
likelihood-ratio test with both chi2 statistics and p-values, and a summary row.

Data: the workflow's cells.parquet, or a CSV with columns participant, drug (the group),
muscle, condition, t and y (bins are the sorted distinct t). The study's groups,
reference group and conditions come from the config. R and lme4 come from Debian's
packages: `make bench-brms-setup` (as root); R is needed by no test.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mimicry.config.validation import load_config  # noqa: E402
from mimicry.stats.frequentist import (  # noqa: E402
    FACTORS,
    FULL_MODEL_TERMS,
    LIKELIHOOD_RATIO_TESTS,
    reduced_terms,
)
from mimicry.stats.mixed_model_fit import (  # noqa: E402
    SHAPE_TIME_CONSTANT_S,
    fit_mixed_model,
)

LME4_SCRIPT = ROOT / "benchmarks" / "lme4_matched.R"
DEFAULT_CELLS = ROOT.parent / "shared" / "benchmarks" / "cells_N130.csv"
CELL_COLUMNS = ["participant", "group", "muscle", "condition", "bin", "t", "y"]
TARGET_RATIO = 2.0
MODELS = {
    "full": FULL_MODEL_TERMS,
    **{f"without_{test}": reduced_terms(test) for test in LIKELIHOOD_RATIO_TESTS},
}


def load_cells(path):
    """The cells table with a bin column (a CSV's: the index of its sorted t)."""
    if str(path).endswith(".csv"):
        cells = pd.read_csv(path).rename(columns={"drug": "group"})
        bins = {t: k for k, t in enumerate(sorted(cells["t"].unique()))}
        return cells.assign(bin=cells["t"].map(bins))[CELL_COLUMNS]
    return pd.read_parquet(path)[CELL_COLUMNS]


def our_fits(cells, levels, repeats):
    """(muscle, model) -> (fastest seconds, fit)."""
    fits = {}
    for muscle, data in cells.groupby("muscle", sort=True):
        full_theta = None
        for model, terms in MODELS.items():
            seconds = []
            for _ in range(repeats):
                started = time.perf_counter()
                fit = fit_mixed_model(data, terms, levels, start=full_theta)
                seconds.append(time.perf_counter() - started)
            if model == "full":
                full_theta = fit.theta
            fits[(muscle, model)] = min(seconds), fit
    return fits


def lme4_fits(cells, levels, repeats, workdir):
    """The lme4 side: its fits table indexed by (muscle, model) and its fixed effects
    named like ours."""
    table = workdir / "cells.csv"
    cells.to_csv(table, index=False)
    prefix = workdir / "lme4"
    command = [
        "Rscript",
        str(LME4_SCRIPT),
        *("--data", str(table), "--out-prefix", str(prefix)),
        *("--groups", ",".join(levels["group"])),
        *("--conditions", ",".join(levels["condition"])),
        *("--shape-time-constant", str(SHAPE_TIME_CONSTANT_S)),
        *("--repeats", str(repeats)),
    ]
    subprocess.run(command, check=True, stdout=sys.stderr)
    fits = pd.read_csv(f"{prefix}_fits.csv", keep_default_na=False)
    fixed = pd.read_csv(f"{prefix}_fixed_effects.csv")
    fixed["term"] = fixed["term"].map(our_term_name)
    return fits.set_index(["muscle", "model"]), fixed


def our_term_name(lme4_name):
    """lme4's ``groupx:conditiony:bin3`` (or ``bin3:conditiony``, as R orders the
    terms of ``group * bin + condition * bin``) as ``group[x]:condition[y]:bin[3]``."""
    if lme4_name == "(Intercept)":
        return "Intercept"
    parts = {}
    for part in lme4_name.split(":"):
        factor = next(factor for factor in FACTORS if part.startswith(factor))
        parts[factor] = f"{factor}[{part[len(factor):]}]"
    return ":".join(parts[factor] for factor in FACTORS if factor in parts)


def fit_rows(ours, lme4, lme4_fixed):
    rows = []
    for (muscle, model), (seconds, fit) in ours.items():
        theirs = lme4.loc[(muscle, model)]
        their_fixed = lme4_fixed.query("muscle == @muscle and model == @model")
        their_fixed = their_fixed.set_index("term")["estimate"]
        if set(their_fixed.index) != set(fit.fixed_effects.index):
            raise ValueError(f"{muscle} {model}: the fixed effects are not the same")
        fixed_difference = fit.fixed_effects - their_fixed[fit.fixed_effects.index]
        rows.append(
            {
                "muscle": muscle,
                "model": model,
                "seconds_ours": round(seconds, 3),
                "seconds_lme4": round(float(theirs["seconds"]), 3),
                "ratio": round(seconds / theirs["seconds"], 2),
                "loglik_ours": f"{fit.loglik:.10f}",
                "loglik_lme4": f"{theirs['loglik']:.10f}",
                "loglik_difference": f"{fit.loglik - theirs['loglik']:.2e}",
                "max_abs_fixed_difference": f"{np.abs(fixed_difference).max():.2e}",
                "converged_ours": fit.converged,
                "singular_ours": fit.singular,
                "singular_lme4": theirs["singular"],
                "lme4_messages": f"'{theirs['messages']}'",
            }
        )
    return rows


def lrt_rows(ours, lme4):
    rows = []
    for muscle in sorted({muscle for muscle, _ in ours}):
        full = ours[(muscle, "full")][1]
        for test in LIKELIHOOD_RATIO_TESTS:
            reduced = ours[(muscle, f"without_{test}")][1]
            df = len(full.fixed_effects) - len(reduced.fixed_effects)
            chi2_ours = 2 * (full.loglik - reduced.loglik)
            chi2_lme4 = 2 * (
                lme4.loc[(muscle, "full"), "loglik"]
                - lme4.loc[(muscle, f"without_{test}"), "loglik"]
            )
            rows.append(
                {
                    "muscle": muscle,
                    "test": test,
                    "df": df,
                    "chi2_ours": f"{chi2_ours:.8f}",
                    "chi2_lme4": f"{chi2_lme4:.8f}",
                    "chi2_difference": f"{chi2_ours - chi2_lme4:.2e}",
                    "p_ours": f"{stats.chi2.sf(chi2_ours, df):.6g}",
                    "p_lme4": f"{stats.chi2.sf(chi2_lme4, df):.6g}",
                }
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cells",
        default=str(DEFAULT_CELLS),
        help="a cells table (.parquet, or .csv as described above)",
    )
    parser.add_argument(
        "--config",
        nargs="+",
        default=[ROOT / "config" / "config.yaml"],
        help="config files, later ones on top (the study's groups and conditions)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="time each fit this many times on both sides and keep the fastest",
    )
    arguments = parser.parse_args()

    study = load_config(*arguments.config)["study"]
    reference = study["reference_group"]
    cells = load_cells(arguments.cells)
    levels = {
        "group": [reference] + [g for g in study["groups"] if g != reference],
        "condition": list(study["conditions"]),
        "bin": sorted(cells["bin"].unique()),
    }
    header = {
        "data": arguments.cells,
        "rows": len(cells),
        "participants": cells["participant"].nunique(),
        "muscles": cells["muscle"].nunique(),
        "repeats": arguments.repeats,
        "load_average_before": os.getloadavg()[0],
    }
    ours = our_fits(cells, levels, arguments.repeats)
    with tempfile.TemporaryDirectory(prefix="mixed-models-benchmark-") as workdir:
        lme4, lme4_fixed = lme4_fits(cells, levels, arguments.repeats, Path(workdir))
    fits = fit_rows(ours, lme4, lme4_fixed)
    ratios = [row["ratio"] for row in fits]
    summary = {
        "fits": len(fits),
        "max_ratio": max(ratios),
        "target_ratio": TARGET_RATIO,
        "target_met": max(ratios) <= TARGET_RATIO,
        "seconds_ours_total": round(sum(row["seconds_ours"] for row in fits), 3),
        "seconds_lme4_total": round(sum(row["seconds_lme4"] for row in fits), 3),
        "max_abs_loglik_difference": max(
            abs(float(row["loglik_difference"])) for row in fits
        ),
    }
    for row in [header, *fits, *lrt_rows(ours, lme4), summary]:
        print(" ".join(f"{key}={value}" for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
