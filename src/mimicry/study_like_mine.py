"""A simulated study like mine: the simulation's parameters estimated from a cells table.

Moment estimates, per muscle x condition cell, pooled over groups (the estimate is a
null study: no drug effect):

- ``a, b, c``: the asymptotic curve (as binned log ratios, ``binned_log_ratio``) fitted
  by least squares to the mean over participants in each bin;
- ``participant_deviation.asymptote_sd``: each participant's least-squares asymptote
  given that cell's b and c; their variance over participants, minus the part the fit's
  own error explains (the residual variance of the bins about the participant's fit
  over sum(rise^2)), square-rooted and averaged over cells. It includes the trials'
  deviations averaged within the participant, so ``trial_asymptote_sd`` is set to 0;
- ``trials_per_condition``: the median of ``n_trials``; the groups and their sizes
  come from the table's participants.

Response types, heavy tails, rate deviations and outliers are not estimated: the
estimate sets them off (normal deviations, everyone mimics), so simulating from it and
estimating again gives back what was estimated. Run as

    python -m mimicry.study_like_mine results/aggregate/cells.parquet --out DIR

which writes DIR/simulation.yaml (apply it on top of config/config.yaml) and
DIR/participants.tsv (the sample sheet it points to).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import optimize

from mimicry.asymptotic import bin_sample_times, binned_log_ratio
from mimicry.bayes.data import SERIES_KEYS
from mimicry.study import load_config


def bin_edges(times):
    """Edges of equal bins whose centres are ``times``."""
    times = np.sort(np.asarray(times, dtype=float))
    width = float(np.median(np.diff(times))) if len(times) > 1 else 2 * times[0]
    return np.append(times - width / 2, times[-1] + width / 2)


def fit_curve(edges, mean_by_bin):
    """a, b, c of the binned curve closest to the bin means (least squares)."""

    def residuals(parameters):
        a, b, log_c = parameters
        return binned_log_ratio(edges, a, b, np.exp(log_c)) - mean_by_bin

    start = [float(mean_by_bin[-1]), float(mean_by_bin[0]), np.log(0.5)]
    solution = optimize.least_squares(residuals, start, method="lm")
    a, b, log_c = solution.x
    return {"a": float(a), "b": float(b), "c": float(np.exp(log_c))}


def bin_rise(edges, c):
    """Mean of 1 - exp(-c t) over each bin: how far the curve has risen."""
    return 1 - np.exp(-c * bin_sample_times(edges)).mean(axis=1)


def participant_asymptote_variance(series, edges, curve):
    """Variance over participants (rows of series) of their least-squares
    asymptotes given the curve's b and c, net of the fits' own error. (The binned
    log ratio is linear in a up to second-order terms for responses of this size.)"""
    rise = bin_rise(edges, curve["c"])
    y = series - curve["b"] * (1 - rise)
    asymptotes = y @ rise / (rise @ rise)
    residual = y - np.outer(asymptotes, rise)
    noise = (residual**2).sum(axis=1) / (len(rise) - 1)
    return float(np.var(asymptotes, ddof=1) - np.mean(noise) / (rise @ rise))


def estimate_simulation(cells, study):
    """The ``simulation`` config section (and the sample sheet) of a study like the
    one ``cells`` holds."""
    cells = cells.sort_values([*SERIES_KEYS, "t"])
    edges = bin_edges(cells["t"].unique())
    curves, variances = {}, []
    for muscle in study["muscles"]:
        curves[muscle] = {}
        for condition in study["conditions"]:
            cell = cells[
                (cells["muscle"] == muscle) & (cells["condition"] == condition)
            ]
            series = cell.pivot(index="participant", columns="t", values="y").dropna()
            curve = fit_curve(edges, series.mean().to_numpy())
            curves[muscle][condition] = curve
            variances.append(
                participant_asymptote_variance(series.to_numpy(), edges, curve)
            )
    sheet = (
        cells[["participant", "group"]]
        .drop_duplicates()
        .rename(columns={"participant": "participant_id"})
        .sort_values("participant_id", ignore_index=True)
    )
    simulation = {
        "trials_per_condition": int(np.median(cells["n_trials"])),
        "response_s": float(edges[-1]),
        "cells": curves,
        "drug_effects": [],
        "response_type_shares": {"none": 0.0, "reverse": 0.0},
        "participant_deviation": {
            "df": None,
            "asymptote_sd": float(np.sqrt(max(np.mean(variances), 0.0))),
            "rate_log_sd": 0.0,
        },
        "outlier_participants": {"share": 0.0},
        "trial_asymptote_sd": 0.0,
        "outlier_trials": {"share": 0.0},
        "flawed_participants": {"flat_channel": [], "too_few_trials": []},
    }
    return simulation, sheet


def write_study_like_mine(cells, study, out_dir):
    """Write simulation.yaml and participants.tsv into out_dir; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    simulation, sheet = estimate_simulation(cells, study)
    sheet_path = out_dir / "participants.tsv"
    sheet.to_csv(sheet_path, sep="\t", index=False)
    config_path = out_dir / "simulation.yaml"
    header = (
        "# A simulated study like the one in the cells table (mimicry.study_like_mine):\n"
        f"#   snakemake --cores 2 --configfile config/config.yaml {config_path}\n"
    )
    config = {"participants": str(sheet_path), "simulation": simulation}
    config_path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return config_path, sheet_path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cells", help="cells table (.parquet)")
    parser.add_argument("--out", required=True, help="directory for the outputs")
    parser.add_argument(
        "--config",
        nargs="+",
        default=["config/config.yaml"],
        help="config files whose study section names muscles and conditions",
    )
    arguments = parser.parse_args()
    study = load_config(*arguments.config)["study"]
    for path in write_study_like_mine(
        pd.read_parquet(arguments.cells), study, arguments.out
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
