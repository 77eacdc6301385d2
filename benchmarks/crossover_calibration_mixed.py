"""Calibration and recovery of the crossover mixed models on synthetic crossover cells.

    .venv/bin/python benchmarks/crossover_calibration_mixed.py                 # ~2 min
    .venv/bin/python benchmarks/crossover_calibration_mixed.py --seconds 600
    .venv/bin/python benchmarks/crossover_calibration_mixed.py --compare-seeds 20

Draws crossover studies (mimicry.bayes.synthetic_crossover) from the default study's
cells parameters with two groups (placebo, naltrexone): --participants participants,
each recorded under both groups in a counterbalanced order, its own deviations shared
by its sessions, a period effect on every cell of the second session, a shift common
to all cells of each session (--session-shift-sd) and the noise and baseline shifts
of tests/test_frequentist.py. Each study is fitted by mimicry.stats.frequentist with the
default random effects (condition_shape) and design crossover.

1. Null (no drug effect), seeds 1, 2, ... until --seconds have passed: for each of
   the drug x condition and drug likelihood-ratio tests and the within-participant
   drug contrast (naltrexone - placebo of the time-averaged mimicry contrast), the
   share of p-values below 0.05 and 0.10 over seeds x muscles, their mean (0.5 if
   uniform) and a Kolmogorov-Smirnov test against the uniform distribution.
2. --compare-seeds seeds (0 skips it): the same null rates with each shared-variance
   random effect of the crossover structure left out in turn, to show what each adds.
3. --simulator-seeds seeds (0 skips it): the null on the simulator's own crossover
   study instead (mimicry.bayes.synthetic.synthetic_cells of counterbalanced
   recordings: each session also has its own deviation of every asymptote,
   simulation.session_deviation), which needs the per-session response-shape weights.
4. Recovery, --effect-seeds seeds: the naltrexone session's ZM asymptote to
   AngryToHappy raised by --effect; whether each drug contrast's 95% interval covers
   the population truth (mimicry.bayes.synthetic_crossover.population_mimicry) and
   has its sign, and the drug x condition LRT's p.
"""

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mimicry.bayes.synthetic import (  # noqa: E402
    counterbalanced_sequences,
    synthetic_cells,
)
from mimicry.bayes.synthetic_crossover import (  # noqa: E402
    crossover_cells,
    population_mimicry,
)
from mimicry.config.validation import load_config  # noqa: E402
from mimicry.simulate import counterbalanced_sessions  # noqa: E402
from mimicry.stats.frequentist import fit_mixed_models  # noqa: E402
from mimicry.stats.mixed_model_fit import (  # noqa: E402
    CONDITION_BIN_INTERCEPT,
    CONDITION_INTERCEPT,
    SESSION_CONDITION_INTERCEPT,
    SESSION_CONDITION_SHAPE,
    SESSION_INTERCEPT,
)

GROUPS = ["placebo", "naltrexone"]
# As tests/test_frequentist.py: the default study's per-bin and per-cell noise.
CELLS_ARGUMENTS = {"bin_width_s": 0.5, "noise_sd": 0.01, "baseline_shift_sd": 0.005}
LEFT_OUT = (
    SESSION_INTERCEPT,
    SESSION_CONDITION_INTERCEPT,
    SESSION_CONDITION_SHAPE,
    CONDITION_BIN_INTERCEPT,
    CONDITION_INTERCEPT,
)


def study(seed, arguments, drug_effect=0.0):
    config = load_config(ROOT / "config" / "config.yaml")
    config["seed"] = seed
    config["study"]["groups"] = GROUPS
    if drug_effect:
        config["simulation"]["drug_effects"] = [
            {
                "group": "naltrexone",
                "muscle": "ZM",
                "condition": "AngryToHappy",
                "parameter": "a",
                "value": drug_effect,
            }
        ]
    cells = crossover_cells(
        config,
        counterbalanced_sequences(GROUPS, arguments.participants),
        period_effects=[0.0, arguments.period_effect],
        session_shift_sd=arguments.session_shift_sd,
        noise_seed=seed,
        **CELLS_ARGUMENTS,
    )
    return config, cells


def simulator_study(seed, arguments):
    """A null crossover study drawn as the simulator draws one (session deviations of
    every asymptote, simulation.session_deviation), with the tests' noise."""
    config = load_config(ROOT / "config" / "config.yaml")
    config["seed"] = seed
    config["study"] |= {"groups": GROUPS, "design": "crossover"}
    config["simulation"]["drug_effects"] = []
    ids = [f"sub-{index:03d}" for index in range(1, arguments.participants + 1)]
    cells = synthetic_cells(
        config,
        counterbalanced_sessions(ids, GROUPS),
        noise_seed=seed,
        **CELLS_ARGUMENTS,
    )
    return config, cells


def fit(config, cells, left_out=()):
    study_config = config["study"]
    return fit_mixed_models(
        cells,
        groups=study_config["groups"],
        reference_group=study_config["reference_group"],
        conditions=study_config["conditions"],
        design="crossover",
        left_out=left_out,
    )


def null_p_values(tables):
    """One row per muscle: the two LRTs' and the drug contrast's p."""
    lrt = tables["lrt"].pivot(index="muscle", columns="test", values="p")
    drug = tables["drug_contrasts"].set_index("muscle")["p"]
    return pd.DataFrame(
        {
            "drug_x_condition LRT": lrt["drug_x_condition"],
            "drug LRT": lrt["drug"],
            "drug contrast": drug,
            "random_effects": tables["lrt"].groupby("muscle")["random_effects"].first(),
        }
    )


def calibration_summary(p_values):
    rows = []
    for test in ("drug_x_condition LRT", "drug LRT", "drug contrast"):
        values = p_values[test].to_numpy()
        rows.append(
            {
                "test": test,
                "n": len(values),
                "reject_0.05": np.mean(values < 0.05),
                "reject_0.10": np.mean(values < 0.10),
                "mean_p": values.mean(),
                "ks_uniform_p": stats.kstest(values, "uniform").pvalue,
            }
        )
    return pd.DataFrame(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--participants", type=int, default=40)
    parser.add_argument("--period-effect", type=float, default=-0.02)
    parser.add_argument("--session-shift-sd", type=float, default=0.01)
    parser.add_argument("--compare-seeds", type=int, default=0)
    parser.add_argument("--effect", type=float, default=0.1)
    parser.add_argument("--effect-seeds", type=int, default=5)
    parser.add_argument("--simulator-seeds", type=int, default=0)
    arguments = parser.parse_args()
    pd.set_option("display.width", 200)

    started, seed, rows = time.perf_counter(), 0, []
    while time.perf_counter() - started < arguments.seconds:
        seed += 1
        rows.append(null_p_values(fit(*study(seed, arguments))).assign(seed=seed))
    p_values = pd.concat(rows)
    elapsed = time.perf_counter() - started
    print(
        f"Null: {seed} seeds x 2 muscles, {arguments.participants} participants x 2 "
        f"sessions, {elapsed:.0f} s ({elapsed / seed:.1f} s a study); random effects "
        f"used: {p_values['random_effects'].value_counts().to_dict()}"
    )
    print(calibration_summary(p_values).to_string(index=False, float_format="%.3f"))

    if arguments.compare_seeds:
        print(f"\nNull, seeds 1-{arguments.compare_seeds}, one random effect left out:")
        for left_out in ((), *((name,) for name in LEFT_OUT)):
            rows = [
                null_p_values(fit(*study(seed, arguments), left_out=left_out))
                for seed in range(1, arguments.compare_seeds + 1)
            ]
            summary = calibration_summary(pd.concat(rows))
            summary.insert(0, "left_out", left_out[0] if left_out else "(none)")
            print(summary.to_string(index=False, float_format="%.3f"))

    if arguments.simulator_seeds:
        seeds = range(1, arguments.simulator_seeds + 1)
        studies = [simulator_study(seed, arguments) for seed in seeds]
        session_sd = studies[0][0]["simulation"]["session_deviation"]["asymptote_sd"]
        print(
            f"\nNull on the simulator's crossover study, seeds 1-{seeds[-1]}, session "
            f"asymptote sd {session_sd:g}, with and without the per-session shape:"
        )
        for left_out in ((), (SESSION_CONDITION_SHAPE,)):
            rows = [null_p_values(fit(*one, left_out=left_out)) for one in studies]
            summary = calibration_summary(pd.concat(rows))
            summary.insert(0, "left_out", left_out[0] if left_out else "(none)")
            print(summary.to_string(index=False, float_format="%.3f"))

    config, _ = study(1, arguments, arguments.effect)
    truth = (
        population_mimicry(config, "naltrexone")["ZM"]
        - population_mimicry(config, "placebo")["ZM"]
    )
    print(
        f"\nRecovery: ZM AngryToHappy asymptote +{arguments.effect} under naltrexone, "
        f"true drug contrast {truth:.4f}"
    )
    rows = []
    for seed in range(1, arguments.effect_seeds + 1):
        tables = fit(*study(seed, arguments, arguments.effect))
        drug = tables["drug_contrasts"].set_index("muscle").loc["ZM"]
        lrt = tables["lrt"].set_index(["muscle", "test"])["p"]
        rows.append(
            {
                "seed": seed,
                "estimate": drug["estimate"],
                "ci_low": drug["ci_low"],
                "ci_high": drug["ci_high"],
                "p": drug["p"],
                "covers": drug["ci_low"] <= truth <= drug["ci_high"],
                "sign_right": np.sign(drug["estimate"]) == np.sign(truth),
                "drug_x_condition_p": lrt[("ZM", "drug_x_condition")],
            }
        )
    recovery = pd.DataFrame(rows)
    print(recovery.to_string(index=False, float_format="%.4f"))
    print(
        f"covered {recovery['covers'].sum()} of {len(recovery)}, sign right "
        f"{recovery['sign_right'].sum()} of {len(recovery)}"
    )


if __name__ == "__main__":
    main()
