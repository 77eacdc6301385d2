"""Simulation-based calibration (Talts et al. 2018) of the asymptotic regression program.

    python -m mimicry.bayes.sbc --replicates 200 --out results/sbc
    python -m mimicry.bayes.sbc --replicates 30 --residual-scale 2 --out /tmp/sbc

Each replicate draws every parameter and a data set from the Stan program itself in
prior-only mode (the cell parameters by NUTS from their priors, the series asymptotes
and rates from the hierarchical prior in generated quantities, y_rep from the
likelihood), fits the same program to that y on a small study design (the config's
groups, muscles and conditions, a few participants per group, the simulator's bins)
and ranks each drawn value of a, b, c, the spreads, nu and the drug contrasts among
its posterior draws. If the program's sampler recovers its own posterior, every rank
is uniform.

The posterior draws of each scalar are thinned to about its effective sample size
(the smaller of bulk and tail ESS), since autocorrelated draws bend rank histograms
into a U. That leaves a different number L of draws per scalar and replicate, so
each rank r (0..L) becomes the fractional rank (r + U) / (L + 1) with U uniform on
(0, 1): exactly uniform on (0, 1) under calibration, whatever L. Per scalar a
chi-square test on binned fractional ranks; the run is calibrated when the smallest
p-value stays above ALPHA divided by the number of scalars (Bonferroni).

``--residual-scale 2`` is a deliberately mis-specified simulator: every simulated
observation's residual about its curve is doubled relative to the drawn sigma, and
the check should fail for sigma.

Outputs in --out: ranks.tsv (one row per replicate and scalar: the drawn value, its
rank, the kept draws, their ESS and the fractional rank), replicates.tsv (each fit's
seed, divergences and tree-depth hits: divergent fits stay in the ranks),
uniformity.tsv (parameter, chi2, df, p), summary.json (the combined check and the
settings) and sbc.png/.pdf (rank histograms with the binomial 99% band of a bin).
"""

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import arviz as az
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.stats  # noqa: E402
import xarray as xr  # noqa: E402

from mimicry.bayes.backend import sample  # noqa: E402
from mimicry.bayes.data import LIKELIHOODS, build_model_input  # noqa: E402
from mimicry.bayes.summaries import CROSSOVER_PARAMETERS, PARAMETERS  # noqa: E402
from mimicry.bayes.synthetic import (  # noqa: E402
    balanced_participants,
    synthetic_cells,
)
from mimicry.config.files import add_allow_yte_argument  # noqa: E402
from mimicry.config.validation import ConfigError, load_config  # noqa: E402
from mimicry.plots.figures import STYLE  # noqa: E402
from mimicry.plots.style import save_figure  # noqa: E402

# Named, not __name__: run as `python -m` the module is __main__.
log = logging.getLogger("mimicry.bayes.sbc")

# The reported parameters but for log c (c is ranked), the participants' own and
# those of a crossover study's model (the SBC study has parallel groups).
RANKED_VARIABLES = tuple(
    name
    for name in PARAMETERS
    if name not in ("log_c", "participant_a", "participant_c", *CROSSOVER_PARAMETERS)
)
DIMENSION_ORDER = ("contrast", "group", "muscle", "condition")
# A cheap fit of a study this small: 2 chains x (300 + 300), about 3.5 s. The
# ranked scalars' ESS (the smaller of bulk and tail) is then about 390 (median; below
# 100 in 2% of them).
FIT_SAMPLER = {
    "backend": "pystan",
    "chains": 2,
    "warmup": 300,
    "draws": 300,
    "adapt_delta": 0.8,
    "max_treedepth": 10,
}
# NUTS draws from the prior are nearly independent already (200 in a row: ESS at
# least 118 for every ranked scalar, median 357); every fourth is kept to be safe.
PRIOR_THINNING = 4
PRIOR_WARMUP = 500
# Family-wise level of the combined check, and the band drawn around each bin.
ALPHA = 0.01
BAND = 0.99
# Chi-square needs about 5 expected ranks per bin; more than 20 bins add no power.
SMALLEST_EXPECTED_PER_BIN = 5
MOST_BINS = 20


def study_design(config, participants_per_group):
    """A cells table with the study's groups, muscles, conditions and the
    simulator's bins, ``participants_per_group`` per group; its y is only a
    placeholder for the simulated one."""
    groups = config["study"]["groups"]
    participants = balanced_participants(groups, participants_per_group * len(groups))
    return synthetic_cells(config, participants)


def prior_replicates(design, study, likelihood, rate_deviations, replicates, seed):
    """Replicates' parameters and data from one prior-only run of the program.

    Returns the prior draws and the prior predictive y_rep (dimension ``replicate``)
    and the observations in the order of y_rep.
    """
    model_input = build_model_input(
        design, study, "drug", likelihood, True, rate_deviations=rate_deviations
    )
    settings = {
        **FIT_SAMPLER,
        "chains": 1,
        "warmup": PRIOR_WARMUP,
        "draws": replicates * PRIOR_THINNING,
        "seed": seed,
    }
    with quiet_pystan():
        inference_data = sample(model_input, settings)
    kept = {"chain": 0, "draw": slice(None, None, PRIOR_THINNING)}

    def by_replicate(dataset):
        return dataset.isel(kept).rename(draw="replicate")

    prior = by_replicate(inference_data.prior)
    prior_ess = min(
        float(az.ess(draws.reshape(1, -1))) for _, _, draws in scalars(prior)
    )
    log.info(
        "prior run: %d draws, every %d-th kept; smallest ESS of a ranked scalar "
        "over the kept draws %.0f",
        settings["draws"],
        PRIOR_THINNING,
        prior_ess,
    )
    y_rep = by_replicate(inference_data.prior_predictive)["y_rep"].values
    return prior, y_rep, model_input.observations


def simulated_y(truth, y_rep, observations, residual_scale=1.0):
    """A replicate's y: the prior predictive y_rep, or (residual_scale != 1) its
    residuals about the drawn curves multiplied by residual_scale."""
    if residual_scale == 1.0:
        return y_rep
    means = curve_means(truth, observations)
    return means + residual_scale * (y_rep - means)


def curve_means(truth, observations):
    """mu(t) of every observation under one draw's series asymptotes, b and rates."""

    def along_observations(*names):
        return {
            name: xr.DataArray(observations[name].to_numpy(), dims="obs")
            for name in names
        }

    series = along_observations("participant", "muscle", "condition")
    asymptote = truth["participant_a"].sel(series)
    start = truth["b"].sel(along_observations("muscle", "condition"))
    rate = (
        truth["participant_c"].sel(series)
        if "participant_c" in truth
        else truth["c"].sel(along_observations("group", "muscle", "condition"))
    )
    decay = np.exp(-rate.values * observations["t"].to_numpy())
    return asymptote.values + (start.values - asymptote.values) * decay


def fit_replicate(observations, y, study, likelihood, rate_deviations, seed):
    """Posterior of the program given the simulated y on the design's observations."""
    cells = observations.assign(y=y)
    model_input = build_model_input(
        cells, study, "drug", likelihood, rate_deviations=rate_deviations
    )
    with quiet_pystan():
        return sample(model_input, {**FIT_SAMPLER, "seed": seed})


@contextlib.contextmanager
def quiet_pystan():
    """Silence PyStan's console (stanc's warnings and progress on every build and
    fit) so that the log shows one line per replicate; logging keeps its streams."""
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        contextlib.redirect_stderr(devnull),
    ):
        yield


def scalars(dataset):
    """(label, variable, values) of every ranked scalar, e.g.
    ``a[naltrexone, ZM, AngryToHappy]``; values keep the sample dimensions."""
    for name in RANKED_VARIABLES:
        if name not in dataset:
            continue
        array = dataset[name]
        dims = [dim for dim in DIMENSION_ORDER if dim in array.dims]
        stacked = array.stack(element=dims) if dims else array.expand_dims("element")
        for index in range(stacked.sizes["element"]):
            element = stacked.isel(element=index)
            labels = [str(element[dim].values) for dim in dims]
            label = f"{name}[{', '.join(labels)}]" if dims else name
            yield label, name, element.values


def replicate_ranks(truth, posterior, rng):
    """Rank of each drawn scalar among its posterior draws thinned to about its ESS,
    and the fractional rank (see the module docstring)."""
    drawn = {label: value for label, _, value in scalars(truth)}
    rows = []
    for label, variable, draws in scalars(posterior):
        ess = min(az.ess(draws, method="bulk"), az.ess(draws, method="tail"))
        stride = max(1, math.ceil(draws.size / ess))
        kept = draws[:, ::stride].ravel()
        rank = int((kept < drawn[label]).sum())
        rows.append(
            {
                "parameter": label,
                "variable": variable,
                "drawn": float(drawn[label]),
                "rank": rank,
                "draws": kept.size,
                "ess": float(ess),
                "fractional_rank": (rank + rng.uniform()) / (kept.size + 1),
            }
        )
    return rows


def default_bins(replicates):
    """Bins of the chi-square test: at least SMALLEST_EXPECTED_PER_BIN ranks each."""
    return int(np.clip(replicates // SMALLEST_EXPECTED_PER_BIN, 2, MOST_BINS))


def rank_counts(fractional_ranks, bins):
    return np.histogram(fractional_ranks, bins=bins, range=(0.0, 1.0))[0]


def uniformity(ranks, bins):
    """Chi-square test of uniform fractional ranks per scalar, in ranks' order."""
    rows = []
    for (parameter, variable), group in ranks.groupby(
        ["parameter", "variable"], sort=False
    ):
        chi2, p = scipy.stats.chisquare(rank_counts(group["fractional_rank"], bins))
        rows.append(
            {
                "parameter": parameter,
                "variable": variable,
                "chi2": float(chi2),
                "df": bins - 1,
                "p": float(p),
            }
        )
    return pd.DataFrame(rows)


def combined_check(tests, alpha=ALPHA):
    """The run passes when no scalar's p-value is below alpha / scalars."""
    smallest = tests.loc[tests["p"].idxmin()]
    level = alpha / len(tests)
    return {
        "scalars": len(tests),
        "smallest_p": float(smallest["p"]),
        "smallest_p_parameter": smallest["parameter"],
        "bonferroni_level": level,
        "below_bonferroni": tests.loc[tests["p"] < level, "parameter"].tolist(),
        "p_below_alpha": int((tests["p"] < alpha).sum()),
        "expected_p_below_alpha": alpha * len(tests),
        "passed": bool(smallest["p"] >= level),
    }


def run_sbc(
    config,
    replicates,
    seed,
    *,
    participants_per_group=4,
    likelihood="student_t",
    rate_deviations=True,
    residual_scale=1.0,
    bins=None,
):
    """Simulate, fit and rank ``replicates`` studies; the tables of the outputs."""
    study = config["study"]
    bins = bins or default_bins(replicates)
    design = study_design(config, participants_per_group)
    prior, y_rep, observations = prior_replicates(
        design, study, likelihood, rate_deviations, replicates, seed
    )
    ranks, fits = [], []
    started = time.perf_counter()
    for replicate in range(replicates):
        # One stream per replicate: a replicate's fit and jitter do not depend on
        # how many replicates run. PyStan takes seeds below 2^31.
        rng = np.random.default_rng([seed, replicate])
        fit_seed = int(rng.integers(2**31 - 1))
        truth = prior.isel(replicate=replicate)
        y = simulated_y(truth, y_rep[replicate], observations, residual_scale)
        fit_started = time.perf_counter()
        inference_data = fit_replicate(
            observations, y, study, likelihood, rate_deviations, fit_seed
        )
        stats = inference_data.sample_stats
        fit = {
            "replicate": replicate,
            "fit_seed": fit_seed,
            "divergences": int(stats["diverging"].sum()),
            "treedepth_hits": int(
                (stats["tree_depth"] >= FIT_SAMPLER["max_treedepth"]).sum()
            ),
        }
        rows = replicate_ranks(truth, inference_data.posterior, rng)
        ranks += [{"replicate": replicate, **row} for row in rows]
        fits.append(fit)
        smallest_ess = min(rows, key=lambda row: row["ess"])
        log.info(
            "replicate %d/%d: %.1f s, %d divergences, smallest ESS %.0f (%s); "
            "%.0f s so far",
            replicate + 1,
            replicates,
            time.perf_counter() - fit_started,
            fit["divergences"],
            smallest_ess["ess"],
            smallest_ess["parameter"],
            time.perf_counter() - started,
        )
    ranks = pd.DataFrame(ranks)
    tests = uniformity(ranks, bins)
    check = combined_check(tests)
    fits = pd.DataFrame(fits)
    check |= {
        "replicates": replicates,
        "bins": bins,
        "divergent_replicates": int((fits["divergences"] > 0).sum()),
        "divergences": int(fits["divergences"].sum()),
        "settings": {
            "participants_per_group": participants_per_group,
            "likelihood": likelihood,
            "rate_deviations": rate_deviations,
            "residual_scale": residual_scale,
            "seed": seed,
            "fit_sampler": FIT_SAMPLER,
        },
    }
    return {"ranks": ranks, "replicates": fits, "uniformity": tests, "check": check}


def rank_figure(ranks, tests, check):
    """Rank histograms, one panel per scalar (a row per variable), with the 99%
    band of a bin's count under uniform ranks; red: p below the Bonferroni level."""
    bins, replicates = check["bins"], check["replicates"]
    by_parameter = tests.set_index("parameter")
    variables = list(dict.fromkeys(tests["variable"]))
    columns = int(tests.groupby("variable").size().max())
    low, high = scipy.stats.binom.ppf(
        [(1 - BAND) / 2, (1 + BAND) / 2], replicates, 1 / bins
    )
    edges = np.linspace(0, 1, bins + 1)
    with matplotlib.style.context(["default", STYLE]):
        figure, axes = plt.subplots(
            len(variables),
            columns,
            figsize=(1.15 * columns, 1.0 * len(variables) + 0.6),
            sharex=True,
            squeeze=False,
        )
        for axis in axes.ravel():
            axis.set_visible(False)
        for row, variable in enumerate(variables):
            parameters = by_parameter.index[by_parameter["variable"] == variable]
            for column, parameter in enumerate(parameters):
                axis = axes[row, column]
                axis.set_visible(True)
                counts = rank_counts(
                    ranks.loc[ranks["parameter"] == parameter, "fractional_rank"], bins
                )
                p = by_parameter.loc[parameter, "p"]
                failed = p < check["bonferroni_level"]
                axis.axhspan(low, high, color="0.85", linewidth=0)
                axis.axhline(replicates / bins, color="0.5", linewidth=0.5)
                axis.stairs(
                    counts, edges, fill=True, color="tab:red" if failed else "0.3"
                )
                axis.set_ylim(0, max(high, counts.max()) * 1.15)
                axis.set_yticks([])
                axis.set_xticks([0, 1])
                # The row names the variable; the title its element and p.
                element = parameter.removeprefix(variable).strip("[]")
                axis.set_title(
                    "\n".join(
                        filter(None, [element.replace(", ", "\n", 1), f"p = {p:.2g}"])
                    ),
                    fontsize=5,
                    color="tab:red" if failed else "black",
                )
            axes[row, 0].set_ylabel(variable, fontsize=7)
        verdict = "passed" if check["passed"] else "failed"
        figure.suptitle(
            f"SBC, {replicates} replicates, {bins} bins: smallest p "
            f"{check['smallest_p']:.2g} vs Bonferroni level "
            f"{check['bonferroni_level']:.2g} ({verdict}); grey band: 99% of a bin's "
            "count under uniform ranks",
            fontsize=7,
        )
        figure.supxlabel(
            "fractional rank of the drawn value among its posterior draws", fontsize=6
        )
        figure.tight_layout()
    return figure


def write_outputs(result, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("ranks", "replicates", "uniformity"):
        result[name].to_csv(out / f"{name}.tsv", sep="\t", index=False)
    (out / "summary.json").write_text(json.dumps(result["check"], indent=2) + "\n")
    save_figure(
        rank_figure(result["ranks"], result["uniformity"], result["check"]),
        STYLE,
        out / "sbc.png",
        out / "sbc.pdf",
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, required=True)
    parser.add_argument("--out", required=True, help="directory for the outputs")
    parser.add_argument("--seed", type=int, default=20230721)
    parser.add_argument("--participants-per-group", type=int, default=4)
    parser.add_argument("--likelihood", choices=LIKELIHOODS, default="student_t")
    parser.add_argument(
        "--rate-deviations", action=argparse.BooleanOptionalAction, default=True
    )
    parser.add_argument(
        "--residual-scale",
        type=float,
        default=1.0,
        help="multiplies the simulated residuals (2: the mis-specified simulator)",
    )
    parser.add_argument("--bins", type=int, help="default: replicates / 5, 2 to 20")
    parser.add_argument(
        "--configfile",
        default="config/config.yaml",
        help="study (groups, muscles, conditions) and the simulator's bins; relative "
        "to the working directory",
    )
    add_allow_yte_argument(parser)
    arguments = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    # The project's progress lines, not those of its libraries (e.g. fontTools).
    logging.getLogger("mimicry").setLevel(logging.INFO)
    try:
        config = load_config(arguments.configfile, allow_yte=arguments.allow_yte)
    except ConfigError as error:
        sys.exit(f"sbc: {error}")
    result = run_sbc(
        config,
        arguments.replicates,
        arguments.seed,
        participants_per_group=arguments.participants_per_group,
        likelihood=arguments.likelihood,
        rate_deviations=arguments.rate_deviations,
        residual_scale=arguments.residual_scale,
        bins=arguments.bins,
    )
    write_outputs(result, arguments.out)
    check = result["check"]
    log.info(
        "%s: smallest p %.3g (%s) against the Bonferroni level %.3g; %d of %d "
        "p-values below %g (%.1f expected); %d divergences in %d of %d replicates",
        "passed" if check["passed"] else "FAILED",
        check["smallest_p"],
        check["smallest_p_parameter"],
        check["bonferroni_level"],
        check["p_below_alpha"],
        check["scalars"],
        ALPHA,
        check["expected_p_below_alpha"],
        check["divergences"],
        check["divergent_replicates"],
        check["replicates"],
    )


if __name__ == "__main__":
    main()
