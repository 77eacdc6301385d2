"""A study like mine: estimates of the simulation's parameters from a cells table."""

import copy
import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import optimize
from snakemake.utils import update_config

from mimicry.asymptotic import binned_log_ratio
from mimicry.bayes.synthetic import synthetic_cells
from helpers.devtools import PROJECT_ROOT, copy_workflow, job_counts, run_snakemake
from mimicry.config.validation import load_config
from mimicry.robustness.study_like_mine import (
    LEVEL_RANGE_MULTIPLE,
    CellsMismatchError,
    check_design,
    estimate_simulation,
    read_cells,
)
from mimicry.simulate import counterbalanced_sessions

FMOV_CONFIG = "config/examples/fmov/config.yaml"

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
    estimate = estimate_simulation(cells, truth)
    assert_recovers(estimate.simulation, truth["simulation"], n_participants)
    # Curves that rise within the window are identified: none is bounded.
    assert estimate.bounded == []
    assert estimate.sheet["group"].value_counts().to_dict() == (
        cells.drop_duplicates("participant")["group"].value_counts().to_dict()
    )

    like_mine = copy.deepcopy(truth)
    update_config(like_mine, {"simulation": estimate.simulation})
    again = estimate_simulation(study_cells(like_mine, default_participants), truth)
    assert_recovers(again.simulation, estimate.simulation, n_participants)


def test_command_writes_a_config_the_workflow_accepts(
    truth, default_participants, tmp_path
):
    cells_path = tmp_path / "cells.parquet"
    study_cells(truth, default_participants).to_parquet(cells_path)
    subprocess.run(
        [sys.executable, "-m", "mimicry.robustness.study_like_mine", str(cells_path)]
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


def read_real_cells(fmov_study):
    return pd.read_csv(
        fmov_study / "reference_cells.csv", dtype={"participant_id": str}
    ).rename(columns={"participant_id": "participant"})


@pytest.fixture(scope="module")
def like_fmov(fmov_study, tmp_path_factory):
    """The real study's cells through study_like_mine with the study's config, in a
    copy of the workflow, as `make study-like-mine CELLS=... CONFIG=...` runs it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("like-fmov") / "workflow")
    result = subprocess.run(
        [sys.executable, "-m", "mimicry.robustness.study_like_mine"]
        + [str(fmov_study / "reference_cells.csv"), "--configfile", FMOV_CONFIG]
        + ["--out", "results/study_like_mine"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return workdir, result


def far_asymptote_fits_as_well(edges, mean_by_bin, curve, multiple=10):
    """Whether a curve whose asymptote lies `multiple` widths of the bin means' range
    beyond it (either side; b and c free) fits the means at least as well as curve:
    then the data do not identify the asymptote."""

    def squares(a, b, c):
        return np.sum((binned_log_ratio(edges, a, b, c) - mean_by_bin) ** 2)

    low, high = mean_by_bin.min(), mean_by_bin.max()
    for far in (high + multiple * (high - low), low - multiple * (high - low)):
        fit = optimize.least_squares(
            lambda p: binned_log_ratio(edges, far, p[0], np.exp(p[1])) - mean_by_bin,
            [mean_by_bin[0], np.log(0.01)],
        )
        if squares(far, fit.x[0], np.exp(fit.x[1])) <= squares(**curve):
            return True
    return False


@pytest.mark.workflow
def test_real_study_estimate_stays_within_the_data(like_fmov, fmov_study):
    workdir, result = like_fmov
    config_path = workdir / "results" / "study_like_mine" / "simulation.yaml"
    written = load_config(workdir / "config" / "config.yaml", config_path)
    real = read_real_cells(fmov_study)
    centres = np.sort(real["t"].unique())
    half_bin = (centres[1] - centres[0]) / 2
    edges = np.append(centres - half_bin, centres[-1] + half_bin)
    warned = set(
        re.findall(
            r"WARNING mimicry\.robustness\.study_like_mine: (\w+) x (\w+):",
            result.stderr,
        )
    )
    unidentified = set()
    for (muscle, condition), cell in real.groupby(["muscle", "condition"]):
        mean_by_bin = cell.groupby("t")["y"].mean().to_numpy()
        curve = written["simulation"]["cells"][muscle][condition]
        width = mean_by_bin.max() - mean_by_bin.min()
        for level in ("a", "b"):
            assert (
                mean_by_bin.min() - LEVEL_RANGE_MULTIPLE * width
                <= curve[level]
                <= mean_by_bin.max() + LEVEL_RANGE_MULTIPLE * width
            ), (muscle, condition, curve)
        if far_asymptote_fits_as_well(edges, mean_by_bin, curve):
            unidentified.add((muscle, condition))
    # Real recordings have such cells (flat or dipping responses): the test sees one.
    assert unidentified
    assert warned == unidentified
    header = config_path.read_text().split("\nparticipants:")[0]
    for muscle, condition in warned:
        assert f"#   {muscle} x {condition}: the 6 s window" in header

    assert written["study"]["groups"] == ["placebo", "oxazepam"]
    assert written["simulation"]["trials_per_condition"] == 4
    sheet = pd.read_csv(workdir / written["participants"], sep="\t", dtype=str)
    real_groups = real.drop_duplicates("participant").set_index("participant")["group"]
    assert sheet.set_index("participant_id")["group"].to_dict() == (
        real_groups.to_dict()
    )


@pytest.mark.workflow
def test_printed_command_simulates_a_study_like_the_real_one(like_fmov, fmov_study):
    workdir, result = like_fmov
    command = shlex.split(result.stdout.strip().splitlines()[-1])
    assert command[0] == "snakemake"
    # The whole workflow is planned as printed (a dry run: config, sample sheet and
    # every job's inputs) and run as printed up to the cells table (simulation,
    # preprocessing, aggregation: 2.5 min on 2 shared cores). The rest (QC, mixed
    # models, the Stan build, prior predictive and two fits of 37 participants at the
    # default 4 x (1000 + 1000) iterations, figures) ran to the end as printed but
    # took over 10 more minutes there, too much for the suite's budget; it reads the
    # same config and cells table.
    run_snakemake(workdir, *command[1:], "--dry-run")
    run_snakemake(workdir, *command[1:], "results/aggregate/cells.parquet")

    simulated = pd.read_parquet(workdir / "results" / "aggregate" / "cells.parquet")
    real = read_real_cells(fmov_study)
    by_participant = ["participant", "group"]
    assert (
        simulated[by_participant].drop_duplicates().sort_values("participant").values
        == real[by_participant].drop_duplicates().sort_values("participant").values
    ).all()
    for column in ("muscle", "condition", "t"):
        assert set(simulated[column]) == set(real[column])
    assert simulated["n_trials"].max() == 4

    # Like the real study: each cell's mean over the window and participants, and
    # how much participants differ in it.
    keys = ["muscle", "condition", "participant"]
    window_means = {
        name: cells.groupby(keys)["y"].mean().groupby(level=[0, 1])
        for name, cells in (("real", real), ("simulated", simulated))
    }
    mean = {name: means.mean() for name, means in window_means.items()}
    sd = {name: means.std() for name, means in window_means.items()}
    n = real["participant"].nunique()
    standard_error = np.sqrt((sd["real"] ** 2 + sd["simulated"] ** 2) / n)
    assert (
        (mean["simulated"] - mean["real"]).abs() < RECOVERY_SE * standard_error
    ).all()
    pooled = {name: np.sqrt((sds**2).mean()) for name, sds in sd.items()}
    assert 3 / 4 < pooled["simulated"] / pooled["real"] < 4 / 3, pooled


def test_a_config_of_another_study_is_refused_naming_the_differences(
    fmov_study, tmp_path
):
    out = tmp_path / "mine"
    result = subprocess.run(
        [sys.executable, "-m", "mimicry.robustness.study_like_mine"]
        + [str(fmov_study / "reference_cells.csv"), "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    for named in ("study.groups", "'oxazepam'", "study.conditions", "'Neutral'"):
        assert named in result.stderr
    assert "CONFIG=" in result.stderr
    assert not out.exists()


# --- crossover studies ---------------------------------------------------------------
CROSSOVER_GROUPS = ["placebo", "naltrexone"]
CROSSOVER_PARTICIPANTS = 130


@pytest.fixture(scope="module")
def crossover_truth(truth):
    """The clean study as a two-group crossover with a session deviation, a period
    effect on the ZM asymptotes and a within-participant drug effect."""
    config = copy.deepcopy(truth)
    update_config(
        config,
        {
            "study": {"groups": CROSSOVER_GROUPS, "design": "crossover"},
            "simulation": {
                "session_deviation": {"asymptote_sd": 0.08},
                "period_effects": [
                    {"period": 2, "muscle": "ZM", "parameter": "a", "value": -0.05}
                ],
                "drug_effects": [
                    {
                        "group": "naltrexone",
                        "muscle": "CS",
                        "condition": "HappyToAngry",
                        "parameter": "a",
                        "value": 0.05,
                    }
                ],
            },
        },
    )
    return config


def crossover_study_cells(config):
    ids = [f"sub-{index:03d}" for index in range(1, CROSSOVER_PARTICIPANTS + 1)]
    recordings = counterbalanced_sessions(ids, config["study"]["groups"])
    return study_cells(config, recordings)


def session_sd(simulation):
    """The sd of a session's own asymptote: its deviation and its trials' mean."""
    trial = simulation["trial_asymptote_sd"] ** 2 / simulation["trials_per_condition"]
    return np.sqrt(simulation["session_deviation"]["asymptote_sd"] ** 2 + trial)


def assert_recovers_crossover(estimate, truth, n):
    """The participant and session sds and the period effects, within RECOVERY_SE
    standard errors (a session sd has about n residual degrees of freedom per cell,
    a period shift the standard error of a mean of n within-participant
    differences)."""
    sd = session_sd(truth)
    found = estimate["session_deviation"]["asymptote_sd"]
    assert abs(found - sd) < RECOVERY_SE * sd / np.sqrt(8 * n), found
    participant_sd = truth["participant_deviation"]["asymptote_sd"]
    found = estimate["participant_deviation"]["asymptote_sd"]
    assert abs(found - participant_sd) < RECOVERY_SE * sd / np.sqrt(n) + (
        RECOVERY_SE * participant_sd / np.sqrt(8 * n)
    ), found
    truth_shift = {
        (effect["muscle"], condition): effect["value"]
        for effect in truth["period_effects"]
        for condition in truth["cells"][effect["muscle"]]
    }
    for effect in estimate["period_effects"]:
        expected = truth_shift.get((effect["muscle"], effect["condition"]), 0.0)
        assert effect["period"] == 2 and effect["parameter"] == "a"
        assert abs(effect["value"] - expected) < RECOVERY_SE * sd * np.sqrt(
            2 / n
        ), effect
    assert len(estimate["period_effects"]) == 4


def test_crossover_estimate_recovers_sessions_periods_and_its_resimulation(
    crossover_truth,
):
    """From a crossover table: the participant and session sds, the period effects
    and the first period's curves; simulating from the estimate (with its sheet's
    sessions) and estimating again gives them back."""
    cells = crossover_study_cells(crossover_truth)
    estimate = estimate_simulation(cells, crossover_truth)
    truth_simulation = crossover_truth["simulation"]
    assert_recovers_crossover(
        estimate.simulation, truth_simulation, CROSSOVER_PARTICIPANTS
    )
    assert list(estimate.sheet.columns) == ["participant_id", "session", "group"]
    recordings = cells[["participant", "session", "group"]].drop_duplicates()
    assert len(estimate.sheet) == len(recordings) == 2 * CROSSOVER_PARTICIPANTS
    zm_happy = estimate.simulation["cells"]["ZM"]["AngryToHappy"]
    assert zm_happy["a"] == pytest.approx(
        truth_simulation["cells"]["ZM"]["AngryToHappy"]["a"], abs=0.03
    )

    like_mine = copy.deepcopy(crossover_truth)
    update_config(like_mine, {"simulation": estimate.simulation})
    like_mine["simulation"]["period_effects"] = estimate.simulation["period_effects"]
    sheet = estimate.sheet
    again_cells = study_cells(
        like_mine,
        [
            (row.participant_id, row.group, row.session, int(row.session))
            for row in sheet.itertuples(index=False)
        ],
    )
    again = estimate_simulation(again_cells, crossover_truth)
    assert_recovers_crossover(
        again.simulation,
        {**estimate.simulation, "trial_asymptote_sd": 0.0},
        CROSSOVER_PARTICIPANTS,
    )


def test_a_crossover_table_needs_a_crossover_config(crossover_truth, truth, tmp_path):
    """A table with sessions under a parallel-group config, and one whose
    participant lacks a group's session, are refused naming what differs."""
    cells = crossover_study_cells(crossover_truth)
    path = tmp_path / "cells.csv"
    cells.to_csv(path, index=False)
    read = read_cells(path)
    assert list(read.columns[-2:]) == ["session", "period"]
    parallel = copy.deepcopy(crossover_truth)
    parallel["study"]["design"] = "parallel"
    with pytest.raises(CellsMismatchError, match="design is parallel but the table"):
        check_design(read, parallel, ["mine.yaml"])
    one_session = read[~((read["participant"] == "sub-001") & (read["period"] == 2))]
    with pytest.raises(CellsMismatchError, match="participant sub-001's sessions"):
        check_design(one_session, crossover_truth, ["mine.yaml"])
    check_design(read, crossover_truth, ["mine.yaml"])


def test_crossover_config_runs_through_a_snakemake_dry_run(crossover_truth, tmp_path):
    """The command's crossover simulation.yaml and sheet are a study the workflow
    accepts: a dry run plans one simulated recording per participant and session."""
    workdir = copy_workflow(tmp_path / "workflow-copy")
    cells_path = workdir / "cells.parquet"
    crossover_study_cells(crossover_truth).to_parquet(cells_path)
    (workdir / "crossover.yaml").write_text(
        yaml.safe_dump({"study": crossover_truth["study"]})
    )
    subprocess.run(
        [sys.executable, "-m", "mimicry.robustness.study_like_mine", str(cells_path)]
        + ["--configfile", "config/clean.yaml", "crossover.yaml", "--out", "mine"],
        check=True,
        cwd=workdir,
    )
    written = yaml.safe_load((workdir / "mine" / "simulation.yaml").read_text())
    assert written["study"]["design"] == "crossover"
    assert written["simulation"]["session_deviation"]["asymptote_sd"] > 0
    assert {effect["period"] for effect in written["simulation"]["period_effects"]} == {
        2
    }
    dry = run_snakemake(
        workdir,
        "-n",
        "results/aggregate/cells.parquet",
        "--configfile",
        "mine/simulation.yaml",
    )
    counts = job_counts(dry.stdout)
    assert counts["simulate_raw"] == 2 * CROSSOVER_PARTICIPANTS, dry.stdout[-2000:]
