"""Benchmark the drug model on the default 130-participant study.

    .venv/bin/python benchmarks/stan_drug.py                      # both likelihoods
    .venv/bin/python benchmarks/stan_drug.py --likelihood normal --recompile
    .venv/bin/python benchmarks/stan_drug.py --cells results/aggregate/cells.parquet
    .venv/bin/python benchmarks/stan_drug.py --backend cmdstanpy \
        --cells ../shared/benchmarks/cells_N130.csv
    .venv/bin/python benchmarks/stan_drug.py --cells results/aggregate/cells.parquet \
        --vs-brms                      # also the matched brms model, and the ratio

Data: synthetic cells drawn from the simulator's participant plans for the sample
sheet's participants (default), or a cells table: the workflow's cells.parquet, or a
CSV with columns participant, drug (the group), muscle, condition, t and y (bins are
the sorted distinct t). --backend picks the sampler (auto: CmdStanPy when CmdStan is
installed, else PyStan). Prints compile seconds (a cache hit unless --recompile),
sampling seconds (wall time of the whole sample call: sampling, PyStan's output
transfer and the ArviZ conversion), the CPU seconds of this process and of its
children during sampling (getrusage for this process and for children that have
exited, /proc for those still running, such as httpstan's chain workers; wall time
includes waiting for other users of the CPU), min bulk and tail ESS over a, b, c and
the contrasts, bulk ESS per second, divergences, max R-hat, tree depths and step
sizes. Targets: zero divergences, R-hat <= 1.01, min bulk ESS >= 800, >= 17 bulk
ESS/s (Student-t) or 30 (normal).

--vs-brms then fits the same cells with benchmarks/brms_matched.R (brms with the
same model and priors, sampled by rstan with the same chains, warmup and draws on 2
cores) and prints its row and the ratio of bulk ESS per second (target >= 10). R,
brms and rstan come from Debian's packages: `make bench-brms-setup` (as root).
"""

import argparse
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mimicry.bayes import (  # noqa: E402
    DEFAULT_STAN_FILE,
    build_model_input,
    resolve_backend,
    sample,
)
from mimicry.bayes.backend import (  # noqa: E402
    BACKENDS,
    DEFAULT_CMDSTAN_CACHE,
    build_pystan_model,
    compile_cmdstan_model,
    import_pystan,
    pystan_model_name,
)
from mimicry.bayes.synthetic import synthetic_cells  # noqa: E402
from mimicry.config.sample_sheet import read_sample_sheet  # noqa: E402
from mimicry.config.validation import load_config  # noqa: E402

BRMS_SCRIPT = ROOT / "benchmarks" / "brms_matched.R"
BRMS_FAMILY = {"student_t": "student", "normal": "gaussian"}

KEY_PARAMETERS = ["a", "b", "c", "contrast_a", "contrast_c"]
TARGET_ESS_PER_SECOND = {"student_t": 17, "normal": 30}
STUDENT_T_NOISE_DF = 4


def cpu_seconds():
    """(this process, its children) CPU seconds so far.

    Children that have exited and been waited for are in RUSAGE_CHILDREN; running
    ones (httpstan's chain workers, CmdStan's chains while they sample) only in
    /proc, as user + system ticks of every process whose parent is this one.
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    exited = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            running += (int(fields[11]) + int(fields[12])) / ticks
    return own.ru_utime + own.ru_stime, exited.ru_utime + exited.ru_stime + running


def load_cells(arguments, config, noise):
    """The cells table, or synthetic cells with Student-t (df 4) or Gaussian noise."""
    if arguments.cells and arguments.cells.endswith(".csv"):
        cells = pd.read_csv(arguments.cells).rename(columns={"drug": "group"})
        bins = {t: k for k, t in enumerate(sorted(cells["t"].unique()))}
        return cells.assign(bin=cells["t"].map(bins))
    if arguments.cells:
        return pd.read_parquet(arguments.cells)
    sheet = read_sample_sheet(ROOT / config["participants"])
    participants = list(zip(sheet["participant_id"], sheet["group"]))
    return synthetic_cells(
        config,
        participants,
        noise_df=STUDENT_T_NOISE_DF if noise == "student_t" else None,
    )


def forget_compiled_model(sampler):
    """Remove this program's compiled model from the backend's cache."""
    if sampler["backend"] == "cmdstanpy":
        sampler["cache_dir"] = tempfile.mkdtemp(prefix="stan-drug-benchmark-")
        return
    import_pystan()
    import httpstan.cache

    name = pystan_model_name(DEFAULT_STAN_FILE.read_text())
    shutil.rmtree(httpstan.cache.model_directory(name), ignore_errors=True)


def benchmark(cells, data_label, config, likelihood, sampler):
    rate_deviations = config["models"]["rate_deviations"]
    model_input = build_model_input(
        cells, config["study"], "drug", likelihood, rate_deviations=rate_deviations
    )
    started = time.perf_counter()
    if sampler["backend"] == "cmdstanpy":
        compile_cmdstan_model(
            DEFAULT_STAN_FILE, sampler.get("cache_dir") or DEFAULT_CMDSTAN_CACHE
        )
    else:
        build_pystan_model(DEFAULT_STAN_FILE, model_input.data, sampler["seed"])
    compile_seconds = time.perf_counter() - started

    (own_before, children_before), load_before = cpu_seconds(), os.getloadavg()[0]
    started = time.perf_counter()
    inference_data = sample(model_input, sampler)
    sampling_seconds = time.perf_counter() - started
    own_after, children_after = cpu_seconds()

    key = inference_data.posterior[KEY_PARAMETERS]
    ess_bulk = min(float(v.min()) for v in az.ess(key, method="bulk").values())
    ess_tail = min(float(v.min()) for v in az.ess(key, method="tail").values())
    stats = inference_data.sample_stats
    depths = np.bincount(stats["tree_depth"].values.ravel())
    return {
        "backend": sampler["backend"],
        "likelihood": likelihood,
        "rate_deviations": rate_deviations,
        "data": data_label,
        "observations": model_input.data["n_obs"],
        "compile_s": round(compile_seconds, 1),
        "sampling_s": round(sampling_seconds, 1),
        "process_cpu_s": round(own_after - own_before, 1),
        "children_cpu_s": round(children_after - children_before, 1),
        "load_average_before": load_before,
        "min_ess_bulk": round(ess_bulk),
        "min_ess_tail": round(ess_tail),
        "ess_bulk_per_s": significant(ess_bulk / sampling_seconds),
        "target_ess_per_s": TARGET_ESS_PER_SECOND[likelihood],
        "divergences": int(stats["diverging"].sum()),
        "max_rhat": round(
            max(float(v.max()) for v in az.rhat(inference_data.posterior).values()), 4
        ),
        "tree_depths": {d: int(n) for d, n in enumerate(depths) if n},
        "step_sizes": np.round(stats["step_size"].isel(draw=0).values, 3).tolist(),
    }


def brms_benchmark(cells, likelihood, rate_deviations, sampler, workdir):
    """Fit the matched brms model to the same cells; its metrics as one row."""
    table = workdir / "cells.csv"
    cells.rename(columns={"group": "drug"})[
        ["participant", "drug", "muscle", "condition", "t", "y"]
    ].to_csv(table, index=False)
    prefix = workdir / f"brms_{likelihood}"
    command = [
        "Rscript",
        str(BRMS_SCRIPT),
        *("--data", str(table), "--family", BRMS_FAMILY[likelihood]),
        *("--chains", str(sampler["chains"]), "--warmup", str(sampler["warmup"])),
        *("--iter", str(sampler["draws"]), "--cores", "2"),
        *("--seed", str(sampler["seed"]), "--out-prefix", str(prefix)),
        *("--rate-deviations", str(int(rate_deviations))),
    ]
    logging.info("running %s", " ".join(command))
    subprocess.run(command, check=True)
    metrics = pd.read_csv(f"{prefix}_metrics.csv").iloc[0]
    return {
        "backend": "brms+rstan",
        "likelihood": likelihood,
        "rate_deviations": rate_deviations,
        "compile_s": round(float(metrics["compile_s"]), 1),
        "sampling_s": round(float(metrics["sampling_s"]), 1),
        "min_ess_bulk": round(float(metrics["min_ess_bulk_abc_contrasts"])),
        "min_ess_tail": round(float(metrics["min_ess_tail_abc_contrasts"])),
        "ess_bulk_per_s": significant(float(metrics["ess_bulk_per_s"])),
        "divergences": int(metrics["divergences"]),
        "max_rhat": round(float(metrics["max_rhat_key"]), 4),
    }


def significant(value, digits=3):
    """value to a few significant digits: a ratio of two rounded ESS/s stays exact
    enough however slow one side is (0.028 printed as 0.03 made a ratio 7% off)."""
    return float(f"{value:.{digits}g}")


def print_row(row):
    """One result line as soon as it is known: a long run stopped early keeps them."""
    print(" ".join(f"{key}={value}" for key, value in row.items()), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cells", help="a cells table (.parquet, or .csv as described above)"
    )
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument(
        "--config",
        nargs="+",
        default=[ROOT / "config" / "config.yaml"],
        help="config files, later ones on top (the study; models.rate_deviations; "
        "and for synthetic cells the simulation)",
    )
    parser.add_argument(
        "--rate-deviations",
        choices=["config", "on", "off"],
        default="config",
        help="participant rate deviations in both models (default: the config's)",
    )
    parser.add_argument(
        "--vs-brms",
        action="store_true",
        help="also fit the matched brms model to the same cells and print the ratio",
    )
    parser.add_argument(
        "--likelihood", choices=["student_t", "normal", "both"], default="both"
    )
    parser.add_argument(
        "--noise",
        choices=["matched", "student_t", "normal"],
        default="matched",
        help="synthetic residuals: like the likelihood, Student-t (df 4) or Gaussian",
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20230721)
    parser.add_argument(
        "--recompile", action="store_true", help="time a compile from scratch"
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    config = load_config(*arguments.config)
    if arguments.rate_deviations != "config":
        config["models"]["rate_deviations"] = arguments.rate_deviations == "on"
    sampler = {
        "backend": resolve_backend(arguments.backend),
        "chains": arguments.chains,
        "warmup": arguments.warmup,
        "draws": arguments.draws,
        "adapt_delta": 0.8,
        "max_treedepth": 10,
        "seed": arguments.seed,
    }
    if arguments.recompile:
        forget_compiled_model(sampler)
    likelihoods = (
        ["student_t", "normal"]
        if arguments.likelihood == "both"
        else [arguments.likelihood]
    )
    with tempfile.TemporaryDirectory(prefix="stan-drug-benchmark-") as workdir:
        for likelihood in likelihoods:
            noise = likelihood if arguments.noise == "matched" else arguments.noise
            data_label = arguments.cells or f"synthetic-{noise}-residuals"
            cells = load_cells(arguments, config, noise)
            ours = benchmark(cells, data_label, config, likelihood, sampler)
            print_row(ours)
            if arguments.vs_brms:
                brms = brms_benchmark(
                    cells,
                    likelihood,
                    config["models"]["rate_deviations"],
                    sampler,
                    Path(workdir),
                )
                ratio = ours["ess_bulk_per_s"] / brms["ess_bulk_per_s"]
                print_row(brms)
                print_row(
                    {"likelihood": likelihood, "ess_per_s_ratio": round(ratio, 1)}
                )


if __name__ == "__main__":
    main()
