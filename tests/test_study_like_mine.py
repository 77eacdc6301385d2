"""A study like mine: estimates of the simulation's parameters from a cells table."""

import copy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from snakemake.utils import update_config

from mimicry.bayes.synthetic import synthetic_cells
from mimicry.devtools import PROJECT_ROOT
from mimicry.study import load_config
from mimicry.study_like_mine import estimate_simulation

# Within this many standard errors of the truth (deterministic runs: a bias check).
RECOVERY_SE = 3.5


@pytest.fixture(scope="module")
def truth(clean_config):
    """The clean study with a wider participant spread than its own, 130 people."""
    config = copy.deepcopy(clean_config)
    update_config(
        config, {"simulation": {"participant_deviation": {"asymptote_sd": 0.15}}}
    )
    return config


def study_cells(config, participants):
    return synthetic_cells(
        config, participants, n_trials=config["simulation"]["trials_per_condition"]
    )


def assert_recovers(estimate, truth, n_participants):
    sd = truth["participant_deviation"]["asymptote_sd"]
    found = estimate["participant_deviation"]["asymptote_sd"]
    # sd of a sample sd over four cells of n participants: sd / sqrt(2 * 4 n).
    assert abs(found - sd) < RECOVERY_SE * sd / np.sqrt(8 * n_participants), found
    for muscle, conditions in truth["cells"].items():
        for condition, cell in conditions.items():
            estimated = estimate["cells"][muscle][condition]
            assert abs(estimated["a"] - cell["a"]) < RECOVERY_SE * sd / np.sqrt(
                n_participants
            ), (muscle, condition, estimated)
            assert abs(estimated["b"] - cell["b"]) < 0.02
            assert estimated["c"] == pytest.approx(cell["c"], rel=0.25)
    assert estimate["trials_per_condition"] == truth["trials_per_condition"]


def test_estimate_recovers_the_simulation_and_its_own_resimulation(
    truth, default_participants
):
    cells = study_cells(truth, default_participants)
    n_participants = cells["participant"].nunique()
    estimate, sheet = estimate_simulation(cells, truth["study"])
    assert_recovers(estimate, truth["simulation"], n_participants)
    assert sheet["group"].value_counts().to_dict() == (
        cells.drop_duplicates("participant")["group"].value_counts().to_dict()
    )

    like_mine = copy.deepcopy(truth)
    update_config(like_mine, {"simulation": estimate})
    again, _ = estimate_simulation(
        study_cells(like_mine, default_participants), truth["study"]
    )
    assert_recovers(again, estimate, n_participants)


def test_command_writes_a_config_the_workflow_accepts(
    truth, default_participants, tmp_path
):
    cells_path = tmp_path / "cells.parquet"
    study_cells(truth, default_participants).to_parquet(cells_path)
    subprocess.run(
        [sys.executable, "-m", "mimicry.study_like_mine", str(cells_path)]
        + ["--out", str(tmp_path / "mine")],
        check=True,
        cwd=PROJECT_ROOT,
    )
    config = load_config(
        PROJECT_ROOT / "config" / "config.yaml", tmp_path / "mine" / "simulation.yaml"
    )
    sheet = pd.read_csv(config["participants"], sep="\t")
    assert len(sheet) == 130
    assert config["simulation"]["participant_deviation"]["df"] is None
