"""A simulated study like mine: the simulation's parameters estimated from a cells table.

Run from the workflow's folder as

    python -m mimicry.robustness.study_like_mine CELLS --configfile MY_CONFIG.yaml --out DIR

(``make study-like-mine CELLS=... CONFIG=...``). CELLS is an aggregated cells table: the
workflow's ``results/aggregate/cells.parquet`` or a CSV with the same columns, one row
per participant x muscle x condition x bin: ``participant`` (or ``participant_id``;
read as text, so ``09`` stays ``09``), ``group``, ``muscle``, ``condition``, ``t`` (the
bin's centre, s), ``y`` (the log ratio) and ``n_trials``; a crossover study's table
(the workflow's, with ``study.design: crossover``) also has ``session`` and
``period``, one row per recording x muscle x condition x bin. The config files go on top of
config/config.yaml as in ``make run CONFIG=...``; their ``study`` section must name
exactly the table's groups, muscles and conditions, and their ``preprocess.response_s``
and ``preprocess.bin_s`` its bins (``preprocess.value`` log_ratio); a mismatch stops
with a message naming both; so does a table with sessions under a parallel-group
config, or the reverse.

Moment estimates, per muscle x condition cell, pooled over groups (the estimate is a
null study: no drug effect):

- ``a, b, c``: the asymptotic curve (as binned log ratios, ``binned_log_ratio``) fitted
  by least squares to the mean over participants in each bin. When the rate is small
  next to the window, the data identify only the product of asymptote and rate, and
  least squares drives the asymptote far beyond anything observed. The levels ``a``
  and ``b`` are therefore kept within the range of the bin means widened on each side
  by ``LEVEL_RANGE_MULTIPLE`` (1) times its width: a curve with its asymptote there
  shows at least about half its rise within the window. A cell whose least-squares
  curve leaves that range is fitted again with ``a`` and ``b`` bounded to it (the rate
  then follows), and a warning names the cell, the unbounded and the bounded fit;
- ``participant_deviation.asymptote_sd``: each participant's least-squares asymptote
  given that cell's b and c (``series_asymptotes``); their variance over participants, minus the part the fit's
  own error explains (the residual variance of the bins about the participant's fit
  over sum(rise^2)), averaged over cells weighted by sum(rise^2), how much of the
  asymptote the window shows (a slow curve's asymptotes are extrapolations), and
  square-rooted. It includes the trials' deviations averaged within the participant,
  so ``trial_asymptote_sd`` is set to 0;
- ``trials_per_condition``: the median of ``n_trials``; the groups and their sizes
  come from the table's participants; ``trial_onset_spacing_s`` is the config's,
  lengthened if the bins' epoch would not fit between onsets.

In a crossover study the recordings' least-squares asymptotes (given the cell's b and
c) are split, per cell, by least squares into a participant's own level, a period
shift and a group shift (within participants):

- ``session_deviation.asymptote_sd``: the residual variance of that fit (a
  recording's deviation from its participant, its period and its group), minus the
  part the fit's own error explains, averaged over cells as above; it includes the
  trials' deviations averaged within the session;
- ``participant_deviation.asymptote_sd``: the variance of the participants' own
  levels, minus the part their estimation error (from the residual variance) explains;
- ``period_effects``: per cell, each later period's shift of ``a`` against the first
  (parameter a); the cell's ``a`` is then the first period's. Period effects on the
  rate are not estimated. In a cell whose curve barely rises within the window (a
  bounded one, see above), a shift of the bins is a large shift of ``a`` (the shift
  over the rise): it simulates the observed shift, not a plausible asymptote;
- the group shifts are not kept (the estimate is a null study), and the sample
  sheet has the table's participants with their sessions and groups, so the
  simulated study has the same sequences.

Response types, heavy tails, rate deviations, outliers and flawed participants are not
estimated: the estimate sets them off (normal deviations, everyone mimics), so
simulating from it and estimating again gives back what was estimated.

DIR/simulation.yaml holds the estimates with the study's design (``study``, a channel
name per muscle, the bins' ``preprocess`` settings, ``source.kind: simulated``) and
DIR/participants.tsv, the sample sheet it points to. The commands printed at the end
(also in the file's header) run the simulated study: ``make run
CONFIG=DIR/simulation.yaml``, or ``snakemake --configfile DIR/simulation.yaml --cores
all`` in the workflow's environment (append a target, e.g.
results/aggregate/cells.parquet, to run part of it). Everything else (the recordings'
sampling rate, hum, drift and artifacts, the preprocessing filters, the models) is the
workflow's default (config/config.yaml).
"""

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import optimize

from mimicry.asymptotic import bin_sample_times, binned_log_ratio
from mimicry.bayes.data import SERIES_KEYS
from mimicry.config.files import add_allow_yte_argument
from mimicry.config.validation import ConfigError, load_config
from mimicry.logs import configure_logging
from mimicry.simulate import ONSET_JITTER_S

log = logging.getLogger("mimicry.robustness.study_like_mine")

# Config the workflow always reads first (the Snakefile's configfile).
DEFAULT_CONFIG = "config/config.yaml"
# a and b stay within the bin means' range widened by this many times its width.
LEVEL_RANGE_MULTIPLE = 1.0
CELL_COLUMNS = ["participant", "group", "muscle", "condition", "t", "y", "n_trials"]
# A crossover table's columns besides CELL_COLUMNS.
SESSION_COLUMNS = ["session", "period"]


class CellsMismatchError(ConfigError):
    """The cells table and the config describe different studies."""


@dataclass
class Estimate:
    simulation: dict
    sheet: pd.DataFrame
    # One message per muscle x condition cell whose curve was bounded.
    bounded: list


def read_cells(path):
    """A cells table (.parquet, else CSV) with participant ids as text.

    Its id column is ``participant`` (the workflow's) or ``participant_id``.
    """
    path = Path(path)
    id_columns = {"participant": str, "participant_id": str}
    if path.suffix.lower() == ".parquet":
        cells = pd.read_parquet(path)
    else:
        cells = pd.read_csv(path, dtype=id_columns)
    present = [column for column in id_columns if column in cells]
    if len(present) != 1:
        raise CellsMismatchError(
            f"cells table {path}: needs one id column, participant or "
            f"participant_id; it has {present or 'neither'}"
        )
    cells = cells.rename(columns={"participant_id": "participant"})
    columns = CELL_COLUMNS + (SESSION_COLUMNS if "session" in cells else [])
    missing = [column for column in columns if column not in cells]
    if missing:
        raise CellsMismatchError(f"cells table {path}: no column {missing}")
    for column in ("participant", "group", "muscle", "condition"):
        cells[column] = cells[column].astype(str)
    if "session" in cells:
        cells = cells.astype({"session": str, "period": "int64"})
    return cells[columns]


def check_design(cells, config, config_files):
    """Raise naming every difference between the table's and the config's groups,
    muscles, conditions and bins."""
    study, preprocess = config["study"], config["preprocess"]
    problems = []
    for key, column in (
        ("groups", "group"),
        ("muscles", "muscle"),
        ("conditions", "condition"),
    ):
        in_table, in_config = set(cells[column]), set(study[key])
        if in_table != in_config:
            problems.append(
                f"study.{key} is {study[key]} but the table's {column}s are "
                f"{sorted(in_table)} (only in the table: {sorted(in_table - in_config)}; "
                f"only in the config: {sorted(in_config - in_table)})"
            )
    centres = np.sort(cells["t"].unique())
    edges = config_bin_edges(preprocess)
    expected = (edges[:-1] + edges[1:]) / 2
    if len(centres) != len(expected) or not np.allclose(centres, expected):
        problems.append(
            f"preprocess.response_s {preprocess['response_s']} in bins of "
            f"preprocess.bin_s {preprocess['bin_s']} s has bin centres "
            f"{np.round(expected, 4).tolist()}, the table's t are {centres.tolist()}"
        )
    if preprocess["value"] != "log_ratio":
        problems.append(
            f"preprocess.value is {preprocess['value']}: the simulated curves are log "
            "ratios (log_ratio)"
        )
    crossover = study.get("design") == "crossover"
    if crossover != ("session" in cells):
        problems.append(
            f"study.design is {study.get('design', 'parallel')} but the table has "
            + ("sessions" if "session" in cells else "no session column")
        )
    elif crossover:
        problems += _crossover_problems(cells, study["groups"])
    else:
        groups_of = cells.groupby("participant")["group"].unique()
        for participant, groups in groups_of[groups_of.map(len) > 1].items():
            problems.append(f"participant {participant} is in groups {sorted(groups)}")
    if problems:
        files = ", ".join(map(str, config_files))
        raise CellsMismatchError(
            f"the cells table does not match the study of {files}: "
            + "; ".join(problems)
            + ". Pass the config of the study the table comes from (make "
            "study-like-mine CONFIG=...)."
        )


def _crossover_problems(cells, groups):
    """Participants of a crossover table without exactly one session per group."""
    recordings = cells[["participant", "session", "group"]].drop_duplicates()
    problems = []
    for participant, rows in recordings.groupby("participant"):
        if sorted(rows["group"]) != sorted(groups):
            problems.append(
                f"participant {participant}'s sessions are under groups "
                f"{sorted(rows['group'])}, not once under each of {groups}"
            )
    return problems


def config_bin_edges(preprocess):
    """Edges of the response window's bins (s)."""
    start, end = preprocess["response_s"]
    n_bins = int(round((end - start) / preprocess["bin_s"]))
    return start + preprocess["bin_s"] * np.arange(n_bins + 1)


def level_bounds(mean_by_bin):
    """The range of the bin means widened by LEVEL_RANGE_MULTIPLE times its width."""
    low, high = float(np.min(mean_by_bin)), float(np.max(mean_by_bin))
    margin = LEVEL_RANGE_MULTIPLE * (high - low)
    return low - margin, high + margin


def fit_curve(edges, mean_by_bin, bounds=None):
    """a, b, c of the binned curve closest to the bin means (least squares); with
    bounds (low, high), a and b within them."""

    def residuals(parameters):
        a, b, log_c = parameters
        return binned_log_ratio(edges, a, b, np.exp(log_c)) - mean_by_bin

    start = np.array([mean_by_bin[-1], mean_by_bin[0], np.log(0.5)], dtype=float)
    if bounds is None:
        solution = optimize.least_squares(residuals, start, method="lm")
    else:
        low, high = bounds
        start[:2] = np.clip(start[:2], low, high)
        solution = optimize.least_squares(
            residuals, start, bounds=([low, low, -np.inf], [high, high, np.inf])
        )
    a, b, log_c = solution.x
    return {"a": float(a), "b": float(b), "c": float(np.exp(log_c))}


def identified_curve(edges, mean_by_bin, cell_name):
    """The least-squares curve, or, when its a or b leaves level_bounds, the bounded
    fit and a message saying so."""
    curve = fit_curve(edges, mean_by_bin)
    low, high = level_bounds(mean_by_bin)
    if all(low <= curve[level] <= high for level in ("a", "b")):
        return curve, None
    bounded = fit_curve(edges, mean_by_bin, (low, high))
    outside = " and ".join(
        level for level in ("a", "b") if not low <= curve[level] <= high
    )
    message = (
        f"{cell_name}: the {edges[-1] - edges[0]:g} s window does not identify the "
        f"curve. Least squares puts a at {curve['a']:.4g}, b at {curve['b']:.4g} and "
        f"the rate c at {curve['c']:.3g}/s, {outside} outside [{low:.3g}, "
        f"{high:.3g}] (the bin means' range widened by {LEVEL_RANGE_MULTIPLE:g} times "
        "its width on each side; a slow rate shows only a x c, a fast one hides b). "
        f"Fitted with a and b within it instead: a = {bounded['a']:.3g}, "
        f"b = {bounded['b']:.3g}, c = {bounded['c']:.3g}/s"
    )
    return bounded, message


def bin_rise(edges, c):
    """Mean of 1 - exp(-c t) over each bin: how far the curve has risen."""
    return 1 - np.exp(-c * bin_sample_times(edges)).mean(axis=1)


def series_asymptotes(series, edges, curve):
    """Each series' (row's) least-squares asymptote given the curve's b and c, the
    variance of that estimate (from the series' residuals about its fit) and
    sum(rise^2), how much of the asymptote the window shows. (The binned log ratio
    is linear in a up to second-order terms for responses of this size.)"""
    rise = bin_rise(edges, curve["c"])
    y = series - curve["b"] * (1 - rise)
    asymptotes = y @ rise / (rise @ rise)
    residual = y - np.outer(asymptotes, rise)
    noise = (residual**2).sum(axis=1) / (len(rise) - 1)
    return asymptotes, float(np.mean(noise) / (rise @ rise)), float(rise @ rise)


def crossover_asymptote_parts(recordings, asymptotes, error, reference_group):
    """A crossover cell's recording asymptotes split by least squares into each
    participant's own level, a shift per period after the first and per group
    besides the reference: (variance of the participants' levels net of their
    estimation error, the residual variance net of the asymptotes' own ``error``,
    {period: shift}). recordings: participant, period and group of each asymptote."""
    participants = pd.get_dummies(recordings["participant"], dtype=float)
    periods = pd.get_dummies(recordings["period"], prefix="period", dtype=float)
    groups = pd.get_dummies(recordings["group"], dtype=float)
    design = pd.concat(
        [participants, periods.iloc[:, 1:], groups.drop(columns=reference_group)],
        axis=1,
    ).to_numpy()
    coefficients, _, rank, _ = np.linalg.lstsq(design, asymptotes, rcond=None)
    residual = asymptotes - design @ coefficients
    residual_variance = float(residual @ residual / (len(asymptotes) - rank))
    n = participants.shape[1]
    levels = coefficients[:n]
    # E[sample variance of the estimated levels] = their variance + this.
    covariance = residual_variance * np.linalg.pinv(design.T @ design)[:n, :n]
    level_error = (np.trace(covariance) - covariance.sum() / n) / (n - 1)
    shifts = dict(
        zip(
            sorted(recordings["period"].unique())[1:],
            map(float, coefficients[n : n + periods.shape[1] - 1]),
        )
    )
    return (
        float(np.var(levels, ddof=1) - level_error),
        residual_variance - error,
        shifts,
    )


def trial_onset_spacing(config):
    """The config's simulated onset spacing, lengthened when the bins' epoch (with
    the simulator's 1 s on either side and its onset jitter) would not fit."""
    preprocess = config["preprocess"]
    epoch = preprocess["response_s"][1] - preprocess["baseline_s"][0]
    needed = max(epoch + ONSET_JITTER_S, preprocess["response_s"][1] + 2.0)
    return max(float(config["simulation"]["trial_onset_spacing_s"]), needed)


def estimate_simulation(cells, config):
    """The ``simulation`` config section, the sample sheet and the bounded cells'
    messages of a study like the one in ``cells`` (read_cells), whose design
    ``config`` holds (check_design)."""
    study = config["study"]
    crossover = "session" in cells
    series_keys = ["participant", *(["period", "group"] if crossover else [])]
    cells = cells.sort_values([*SERIES_KEYS, *series_keys[1:], "t"])
    edges = config_bin_edges(config["preprocess"])
    curves, variances, weights, bounded = {}, [], [], []
    session_variances, period_effects = [], []
    for muscle in study["muscles"]:
        curves[muscle] = {}
        for condition in study["conditions"]:
            cell = cells[
                (cells["muscle"] == muscle) & (cells["condition"] == condition)
            ]
            series = cell.pivot(index=series_keys, columns="t", values="y").dropna()
            curve, message = identified_curve(
                edges, series.mean().to_numpy(), f"{muscle} x {condition}"
            )
            if message:
                log.warning(message)
                bounded.append(message)
            curves[muscle][condition] = curve
            asymptotes, error, weight = series_asymptotes(
                series.to_numpy(), edges, curve
            )
            if crossover:
                variance, session_variance, shifts = crossover_asymptote_parts(
                    series.index.to_frame(index=False),
                    asymptotes,
                    error,
                    study["reference_group"],
                )
                session_variances.append(session_variance)
                periods = series.index.get_level_values("period")
                curve["a"] -= float(np.mean([shifts.get(p, 0.0) for p in periods]))
                period_effects += [
                    {
                        "period": int(period),
                        "muscle": muscle,
                        "condition": condition,
                        "parameter": "a",
                        "value": shift,
                    }
                    for period, shift in shifts.items()
                ]
            else:
                variance = float(np.var(asymptotes, ddof=1) - error)
            variances.append(variance)
            weights.append(weight)
    sheet_columns = ["participant", *(["session"] if crossover else []), "group"]
    sheet = (
        cells.sort_values(series_keys)[sheet_columns]
        .drop_duplicates()
        .rename(columns={"participant": "participant_id"})
        .sort_values("participant_id", kind="stable", ignore_index=True)
    )
    asymptote_variance = np.average(variances, weights=weights)
    simulation = {
        "trials_per_condition": int(np.median(cells["n_trials"])),
        "trial_onset_spacing_s": trial_onset_spacing(config),
        "response_s": float(edges[-1]),
        "cells": curves,
        "drug_effects": [],
        "response_type_shares": {"none": 0.0, "reverse": 0.0},
        "participant_deviation": {
            "df": None,
            "asymptote_sd": float(np.sqrt(max(asymptote_variance, 0.0))),
            "rate_log_sd": 0.0,
        },
        "outlier_participants": {"share": 0.0},
        "trial_asymptote_sd": 0.0,
        "outlier_trials": {"share": 0.0},
        "flawed_participants": {"flat_channel": [], "too_few_trials": []},
    }
    if crossover:
        session_variance = np.average(session_variances, weights=weights)
        simulation["session_deviation"] = {
            "asymptote_sd": float(np.sqrt(max(session_variance, 0.0)))
        }
        simulation["period_effects"] = period_effects
    return Estimate(simulation, sheet, bounded)


def simulated_study_config(config, simulation, sheet_path):
    """What simulation.yaml holds: the study's design, the bins and the estimates."""
    preprocess = config["preprocess"]
    return {
        "participants": str(sheet_path),
        "study": config["study"],
        # The simulator writes EDF files whose channels carry these names.
        "channels": {muscle: f"EMG_{muscle}" for muscle in config["study"]["muscles"]},
        "source": {"kind": "simulated"},
        "preprocess": {
            key: preprocess[key] for key in ("baseline_s", "response_s", "bin_s")
        },
        "simulation": simulation,
    }


def simulate_commands(config_path):
    """The commands that run the simulated study from the workflow's folder: make's
    (the report too) and Snakemake's (in the workflow's environment; a target
    appended runs part of it)."""
    return [
        f"make run CONFIG={config_path}",
        f"snakemake --configfile {config_path} --cores all",
    ]


def write_study_like_mine(cells, config, out_dir):
    """Write simulation.yaml and participants.tsv into out_dir; return both paths
    and the Estimate."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    estimate = estimate_simulation(cells, config)
    sheet_path = out_dir / "participants.tsv"
    estimate.sheet.to_csv(sheet_path, sep="\t", index=False)
    config_path = out_dir / "simulation.yaml"
    notes = "".join(f"#   {message}\n" for message in estimate.bounded)
    make, snakemake = simulate_commands(config_path)
    header = (
        "# A simulated study like the one in the cells table\n"
        "# (mimicry.robustness.study_like_mine), on top of config/config.yaml; run from\n"
        "# the workflow's folder:\n"
        f"#   {make}\n#   {snakemake}\n"
        + (f"# Curves the data do not identify:\n{notes}" if notes else "")
    )
    written = simulated_study_config(config, estimate.simulation, sheet_path)
    config_path.write_text(
        header + yaml.safe_dump(written, sort_keys=False, default_flow_style=None)
    )
    return config_path, sheet_path, estimate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cells", help="cells table (.parquet, else CSV)")
    parser.add_argument("--out", required=True, help="directory for the outputs")
    parser.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help=f"your study's config files, on top of {DEFAULT_CONFIG} (as in make run)",
    )
    add_allow_yte_argument(parser)
    arguments = parser.parse_args()
    configure_logging()
    config_files = [DEFAULT_CONFIG, *arguments.configfile]
    try:
        config = load_config(*config_files, allow_yte=arguments.allow_yte)
        cells = read_cells(arguments.cells)
        check_design(cells, config, config_files)
    except ConfigError as error:
        sys.exit(f"study_like_mine: {error}")
    config_path, sheet_path, _ = write_study_like_mine(cells, config, arguments.out)
    make, snakemake = simulate_commands(config_path)
    print(f"wrote {config_path} and {sheet_path}; simulate the study with")
    print(f"  {make}\nor, in the workflow's environment,\n  {snakemake}")


if __name__ == "__main__":
    main()
