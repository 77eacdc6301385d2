"""How the raw-recording route's cells differ from the directly drawn cells that the
sensitivity sweep uses, on a finished run of the simulated study.

    .venv/bin/python benchmarks/cells_route.py [--cells results/aggregate/cells.parquet]
        [--config config/config.yaml ...]

Both start from the same participants (mimicry.simulate.plan_participant, the run's
seed); the raw route adds what recording, preprocessing and averaging trials add. The
difference per row (raw minus noise-free) is split into a per-series shift (its mean
over the series' bins) and the bin noise within the series. Prints their sds and
kurtosis per muscle x condition and overall, and the single Gaussian sd the sweep
uses instead (mimicry.robustness.sensitivity.bin_noise_sd).
"""

import argparse

import pandas as pd

from mimicry.bayes.synthetic import synthetic_cells
import helpers_path  # noqa: F401 (tests/ on sys.path)
from helpers.devtools import PROJECT_ROOT
from mimicry.config.validation import load_config
from mimicry.robustness.sensitivity import analysed_design, bin_noise_sd

SERIES = ["participant", "muscle", "condition"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default="results/aggregate/cells.parquet")
    parser.add_argument(
        "--config", nargs="+", default=[PROJECT_ROOT / "config" / "config.yaml"]
    )
    arguments = parser.parse_args()
    config = load_config(*arguments.config)
    raw = pd.read_parquet(arguments.cells)
    noise_free = synthetic_cells(config, analysed_design(raw), noise_sd=0.0)
    merged = raw.merge(
        noise_free[SERIES + ["bin", "y"]], on=SERIES + ["bin"], suffixes=("", "_drawn")
    )
    merged["difference"] = merged["y"] - merged["y_drawn"]
    merged["shift"] = merged.groupby(SERIES)["difference"].transform("mean")
    merged["within"] = merged["difference"] - merged["shift"]
    for cell, rows in [("all", merged), *merged.groupby(["muscle", "condition"])]:
        shifts = rows.drop_duplicates(SERIES)["shift"]
        print(
            f"cell={'/'.join(cell) if isinstance(cell, tuple) else cell} "
            f"series={len(shifts)} within_sd={rows['within'].std():.4f} "
            f"within_kurtosis={rows['within'].kurt():.2f} "
            f"shift_sd={shifts.std():.4f} shift_kurtosis={shifts.kurt():.2f}"
        )
    print(f"sweep_bin_noise_sd={bin_noise_sd(raw, config['study']):.4f}")


if __name__ == "__main__":
    main()
