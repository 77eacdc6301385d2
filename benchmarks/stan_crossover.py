"""Benchmark the drug model on a synthetic crossover study of realistic size, and the
calibration of its within-participant contrasts under the null.

    .venv/bin/python benchmarks/stan_crossover.py                   # speed, defaults
    .venv/bin/python benchmarks/stan_crossover.py --likelihood normal
    .venv/bin/python benchmarks/stan_crossover.py --calibration 600  # null, 600 CPU s

Data: the default study (config/config.yaml: response types, heavy-tailed participant
deviations, participants' own rates) as a placebo/naltrexone crossover with
conditions Angry, Happy and Neutral (mimicry.bayes.synthetic.crossover_study_config):
40 participants x 2 sessions (sequences placebo-naltrexone and naltrexone-placebo
alternately) x 2 muscles x 3 conditions x 12 bins, each session's asymptotes moved by
normal(0, --session-sd) draws and by --period-shift in period 2 (every cell), Gaussian
noise of sd 0.03. The model is fitted as the workflow fits it (models.likelihood and
models.rate_deviations of the default config unless --likelihood is given; stan's
chains, warmup and draws unless given).

Speed: prints sampling seconds (wall; PyStan runs one process per chain on the
machine's cores), the CPU seconds of the chains, min bulk and tail ESS over a, b, c,
the spreads, period_a and the contrasts, bulk ESS per CPU second, divergences, max
R-hat and tree depths.

--calibration BUDGET: null studies (no drug effect) with simulation and noise seeds
1, 2, ..., fitted one after another until their chains have used BUDGET CPU seconds
(about that many seconds on one core); prints how many of the contrast_a (and
contrast_c) 95% HDIs exclude 0, per seed and in total, with the binomial probability
of at least that many under a calibrated 5%.

Observed (PyStan, shared 2-core machine): defaults (Student-t, rate deviations, 4 x
(1000 + 1000)) 155 s wall, 150 CPU s, min bulk ESS 2467, tail 2033, no divergences;
--likelihood normal 107 s, min bulk ESS 3445. --calibration 600 --likelihood normal
--chains 2 --warmup 400 --draws 400: 28 seeds, contrast_a 8 of 168 HDIs exclude 0
(4.8%), contrast_c 3 of 168, no divergences.
"""

import argparse
import copy
import logging
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from mimicry.bayes import build_model_input, sample, summary_table  # noqa: E402
from mimicry.bayes.synthetic import (  # noqa: E402
    counterbalanced_sequences,
    crossover_study_config,
    synthetic_crossover_cells,
)
from mimicry.config.validation import load_config  # noqa: E402
from stan_drug import cpu_seconds  # noqa: E402

KEY_PARAMETERS = [
    "a",
    "b",
    "c",
    "participant_sd",
    "session_sd",
    "sigma",
    "period_a",
    "contrast_a",
    "contrast_c",
]
N_PARTICIPANTS = 40


def study_cells(config, seed, session_sd, period_shift):
    config = copy.deepcopy(config)
    config["seed"] = seed
    study = config["study"]
    shifts = {
        (muscle, condition): period_shift
        for muscle in study["muscles"]
        for condition in study["conditions"]
    }
    return synthetic_crossover_cells(
        config,
        counterbalanced_sequences(study["groups"], N_PARTICIPANTS),
        session_sd=session_sd,
        period_shift=shifts,
        noise_seed=seed,
    )


def fit(cells, config, likelihood, sampler):
    """(inference data, wall seconds, CPU seconds of the chains)."""
    model_input = build_model_input(
        cells,
        config["study"],
        "drug",
        likelihood,
        rate_deviations=config["models"]["rate_deviations"],
    )
    own_before, children_before = cpu_seconds()
    started = time.perf_counter()
    inference_data = sample(model_input, sampler)
    wall = time.perf_counter() - started
    own_after, children_after = cpu_seconds()
    return inference_data, wall, children_after - children_before


def speed(config, likelihood, sampler, session_sd, period_shift):
    cells = study_cells(config, config["seed"], session_sd, period_shift)
    # A first fit compiles (or fetches) the program; time a second.
    fit(cells, config, likelihood, {**sampler, "warmup": 10, "draws": 10})
    inference_data, wall, cpu = fit(cells, config, likelihood, sampler)
    key = inference_data.posterior[
        [name for name in KEY_PARAMETERS if name in inference_data.posterior]
    ]
    ess_bulk = az.ess(key, method="bulk")
    worst = min(ess_bulk.data_vars, key=lambda name: float(ess_bulk[name].min()))
    min_bulk = float(ess_bulk[worst].min())
    min_tail = min(float(v.min()) for v in az.ess(key, method="tail").values())
    stats = inference_data.sample_stats
    print(
        f"{N_PARTICIPANTS} participants x 2 sessions x {len(cells['muscle'].unique())} "
        f"muscles x {len(cells['condition'].unique())} conditions x "
        f"{cells['bin'].nunique()} bins; {likelihood} likelihood, rate deviations "
        f"{config['models']['rate_deviations']}; {sampler['chains']} chains x "
        f"({sampler['warmup']} warmup + {sampler['draws']} draws)"
    )
    print(f"sampling seconds (wall)   {wall:.1f}")
    print(f"chains' CPU seconds       {cpu:.1f}")
    print(f"min bulk ESS              {min_bulk:.0f} ({worst})")
    print(f"min tail ESS              {min_tail:.0f}")
    print(f"bulk ESS per CPU second   {min_bulk / cpu:.1f}")
    print(f"divergences               {int(stats['diverging'].sum())}")
    print(
        f"max R-hat                 {max(float(v.max()) for v in az.rhat(key).values()):.4f}"
    )
    depths = np.bincount(stats["tree_depth"].values.ravel())
    print(f"tree depths               {dict(enumerate(depths.tolist()))}")


def calibration(config, likelihood, sampler, session_sd, period_shift, budget):
    config = copy.deepcopy(config)
    config["simulation"]["drug_effects"] = []
    used, seed, excluding = 0.0, 0, {"contrast_a": [], "contrast_c": []}
    while used < budget:
        seed += 1
        cells = study_cells(config, seed, session_sd, period_shift)
        inference_data, _, cpu = fit(cells, config, likelihood, sampler)
        used += cpu
        table = summary_table(inference_data)
        counts = []
        for name in excluding:
            rows = table[table["variable"] == name]
            outside = rows[(rows["hdi_low"] > 0) | (rows["hdi_high"] < 0)]
            excluding[name].append((len(outside), len(rows)))
            counts.append(f"{name} {len(outside)} of {len(rows)}")
        divergences = int(inference_data.sample_stats["diverging"].sum())
        print(
            f"seed {seed}: {', '.join(counts)} HDIs exclude 0 "
            f"({cpu:.0f} CPU s, {divergences} divergences)",
            flush=True,
        )
    for name, per_seed in excluding.items():
        outside = sum(count for count, _ in per_seed)
        total = sum(n for _, n in per_seed)
        p = scipy.stats.binom.sf(outside - 1, total, 0.05)
        print(
            f"{name}: {outside} of {total} 95% HDIs exclude 0 over {seed} seeds "
            f"({100 * outside / total:.1f}%; P(at least that many | 5%) = {p:.2f})"
        )
    print(f"CPU seconds used: {used:.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--likelihood", choices=["student_t", "normal"])
    parser.add_argument("--chains", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--draws", type=int)
    parser.add_argument("--session-sd", type=float, default=0.1)
    parser.add_argument("--period-shift", type=float, default=-0.05)
    parser.add_argument("--calibration", type=float, metavar="CPU_SECONDS")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = crossover_study_config(load_config(ROOT / "config" / "config.yaml"))
    likelihood = arguments.likelihood or config["models"]["likelihood"]
    stan = config["stan"]
    sampler = {
        "backend": "pystan",
        "chains": arguments.chains or stan["chains"],
        "warmup": arguments.warmup or stan["warmup"],
        "draws": arguments.draws or stan["draws"],
        "adapt_delta": stan["adapt_delta"],
        "max_treedepth": stan["max_treedepth"],
        "seed": config["seed"],
        "refresh": 10_000,
    }
    if arguments.calibration:
        calibration(
            config,
            likelihood,
            sampler,
            arguments.session_sd,
            arguments.period_shift,
            arguments.calibration,
        )
    else:
        speed(config, likelihood, sampler, arguments.session_sd, arguments.period_shift)


if __name__ == "__main__":
    main()
