"""Preprocessing of the simulated quick study: truth recovery, artifact rejection,
strong responders, participant exclusion, agreement with MNE's own filters and epochs,
bad inputs and inconsistent settings."""

import copy
import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest
import yaml

from mimicry.asymptotic import binned_log_ratio
from helpers.devtools import PROJECT_ROOT, run_snakemake, write_long_edf
from mimicry.io.recording_types import RecordingError
from mimicry.preprocessing.preprocess import preprocess_participant, write_outputs
from helpers.rejection_truth import ARTIFACT_REASONS, rejection_accuracy
from mimicry.config.sample_sheet import read_sample_sheet
from mimicry.config.validation import ConfigError, check_config
from mimicry.simulate import (
    background_log_ratios,
    emg_noise,
    plan_participant,
    simulate_participant,
    study_truth,
    synthesize,
    write_edf,
)

BIN_EDGES_S = np.arange(0.0, 6.01, 0.5)
# Mean over about 10 participants x 11 kept trials of log(bin mean / baseline mean),
# compared with the mean of the same trials' true curves (cell + participant + trial
# asymptote, all in the plan) plus what the level fluctuation and the spontaneous
# bursts add to each (simulate.background_log_ratios): what remains is the sampling noise of rectified EMG
# (about 0.09 per trial and bin, so about 0.01 for the cell mean) and the previous
# trial's decay reaching into some baselines (below 0.02). Observed: at most 0.021.
TIME_COURSE_TOLERANCE = 0.04
# Floors for the quick study on a steady background (12 participants, about 50
# injected trial x muscle pairs). On the default 130-participant study on a steady
# background the limits of 3 reached recall 1 and precision 1 (benchmarks/rejection.py):
# the weakest burst was 7.8 times the median around it, the largest clean departure 1.8
# times.
MIN_RECALL = 0.95
MIN_PRECISION = 0.95
# MNE and this package run the same Butterworth designs forwards and backwards; they
# differ only in how they pad the file's ends, 4 s before the first window, so inside
# the windows they agree to rounding (observed 2e-12).
MNE_TOLERANCE = 1e-8


@dataclass
class Participant:
    plan: object
    path: object
    table: pd.DataFrame
    qc: dict
    background: dict  # simulate.background_log_ratios


def study_settings(config, rejection=None, **preprocess):
    """The sections preprocess_participant reads, from a validated config, with
    preprocess keys (and rejection keys) replaced."""
    settings = copy.deepcopy(
        {key: config[key] for key in ("study", "channels", "recording", "preprocess")}
    )
    settings["preprocess"].update(preprocess)
    settings["preprocess"]["rejection"].update(rejection or {})
    return settings


def simulated_study(config, directory):
    """Every participant of config's sample sheet simulated, preprocessed with the
    defaults."""
    sheet = read_sample_sheet(PROJECT_ROOT / config["participants"])
    study = {}
    for participant, group in zip(sheet["participant_id"], sheet["group"]):
        path = directory / f"{participant}.edf"
        plan = simulate_participant(config, participant, group, path)
        table, qc = preprocess_participant(path, participant, study_settings(config))
        background = background_log_ratios(config, plan, BIN_EDGES_S)
        study[participant] = Participant(plan, path, table.to_pandas(), qc, background)
    return study


@pytest.fixture(scope="module")
def quick_study(quick_config, tmp_path_factory):
    """The quick study as configured (a wandering EMG level, spontaneous bursts)."""
    return simulated_study(quick_config, tmp_path_factory.mktemp("quick-study"))


@pytest.fixture(scope="module")
def steady_quick_study(steady_quick_config, tmp_path_factory):
    """The quick study on a steady background, for the checks that the rules catch
    the injected artifacts and flaws and nothing else: on the configured background
    they also reject physiology beyond their limits, which
    benchmarks/signal_realism.py measures against a real study."""
    return simulated_study(
        steady_quick_config, tmp_path_factory.mktemp("steady-quick-study")
    )


def trial_truth(plan, background, muscle, condition, trials):
    """Mean over the given trials of each trial's expected binned log ratio: its curve
    plus what background (`simulate.background_log_ratios`) adds to it."""
    cell = plan.cell_parameters[muscle][condition]
    return np.mean(
        [
            binned_log_ratio(
                BIN_EDGES_S,
                cell["a"] + plan.trials[trial].asymptote_deviation[muscle],
                cell["b"],
                cell["c"],
            )
            + background[muscle][trial]
            for trial in trials
        ],
        axis=0,
    )


def test_table_has_one_row_per_trial_muscle_and_bin(quick_config, quick_study):
    participant = quick_study["sub-001"]
    table = participant.table
    assert list(table.columns) == [
        "participant",
        "trial",
        "condition",
        "muscle",
        "bin",
        "t",
        "value",
        "rejected",
        "reason",
    ]
    n_trials = len(participant.plan.trials)
    assert len(table) == n_trials * 2 * (len(BIN_EDGES_S) - 1)
    assert not table.duplicated(["trial", "muscle", "bin"]).any()
    np.testing.assert_allclose(sorted(table["t"].unique()), BIN_EDGES_S[:-1] + 0.25)
    conditions = table.groupby("trial")["condition"].first()
    assert list(conditions) == [t.condition for t in participant.plan.trials]
    assert (table["reason"] == "").eq(~table["rejected"]).all()
    assert participant.qc["n_trials"] == n_trials
    assert participant.qc["sampling_rate_hz"] == 1000


def test_recovered_time_courses_match_the_truth(quick_config, quick_study):
    errors = {}
    for muscle in quick_config["study"]["muscles"]:
        for condition in quick_config["study"]["conditions"]:
            measured, expected = [], []
            for participant in quick_study.values():
                if participant.qc["excluded"]:
                    continue
                table = participant.table
                kept = table[
                    ~table["rejected"]
                    & (table["muscle"] == muscle)
                    & (table["condition"] == condition)
                ]
                measured.append(kept.groupby("bin")["value"].mean().to_numpy())
                expected.append(
                    trial_truth(
                        participant.plan,
                        participant.background,
                        muscle,
                        condition,
                        kept["trial"].unique(),
                    )
                )
            error = np.abs(np.mean(measured, axis=0) - np.mean(expected, axis=0))
            errors[muscle, condition] = error.max()
            print(
                f"{muscle} {condition}: {len(measured)} participants, "
                f"max |recovered - truth| = {error.max():.3f}"
            )
    assert max(errors.values()) < TIME_COURSE_TOLERANCE, errors


def test_injected_artifacts_are_rejected(steady_quick_config, steady_quick_study):
    config = steady_quick_config
    sheet = read_sample_sheet(PROJECT_ROOT / config["participants"])
    truth = study_truth(config, list(zip(sheet["participant_id"], sheet["group"])))
    qcs = {participant: p.qc for participant, p in steady_quick_study.items()}
    accuracy = rejection_accuracy(
        truth["participants"], qcs, config["study"]["muscles"]
    )
    print(accuracy)
    assert accuracy["injected"] > 30
    assert accuracy["recall"] >= MIN_RECALL
    assert accuracy["precision"] >= MIN_PRECISION
    for qc in qcs.values():
        for entry in qc["rejected_trials"]:
            assert entry["reason"] in ARTIFACT_REASONS + ("flat_channel",), entry
            assert entry["detail"], entry


def test_flawed_participants_are_excluded_with_their_reason(steady_quick_study):
    for participant_id, participant in steady_quick_study.items():
        qc, flaw = participant.qc, participant.plan.flaw
        print(participant_id, flaw, qc["exclusion_reasons"])
        assert qc["excluded"] == (flaw is not None)
        if flaw == "flat_channel":
            muscle = participant.plan.flat_muscle
            assert qc["exclusion_reasons"][0].startswith(f"flat_channel:{muscle}")
            assert qc["muscles"][muscle]["excluded"]
            rows = participant.table[participant.table["muscle"] == muscle]
            assert (rows["reason"] == "flat_channel").all()
        if flaw == "too_few_trials":
            assert qc["exclusion_reasons"]
            assert all(r.startswith("too_few_trials:") for r in qc["exclusion_reasons"])
            assert re.fullmatch(
                r"too_few_trials:(ZM|CS)/\w+ \d+/\d+ < 50%", qc["exclusion_reasons"][0]
            )


def mne_reference(path, notch_hz, options):
    """Log ratio and difference per trial x muscle x bin with MNE's filters and epochs."""
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    fs = raw.info["sfreq"]
    notch = dict(order=options["notch_order"], ftype="butter", output="sos")
    # MNE's IIR notch takes one frequency at a time.
    for frequency in notch_hz:
        raw.notch_filter(
            frequency,
            method="iir",
            notch_widths=options["notch_width_hz"],
            trans_bandwidth=0.0,
            iir_params=notch,
            phase="zero",
            verbose="error",
        )
    band = dict(order=options["band_order"], ftype="butter", output="sos")
    raw.filter(
        *options["band_hz"],
        method="iir",
        iir_params=band,
        phase="zero",
        verbose="error",
    )
    raw.apply_function(np.abs)
    events, _ = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(
        raw,
        events,
        tmin=-1.0,
        tmax=6.0 - 1 / fs,
        baseline=None,
        preload=True,
        verbose="error",
    )
    data = epochs.get_data(units="uV")  # trial, channel, sample
    baseline = data[..., : int(fs)].mean(axis=-1, keepdims=True)
    bins = (
        data[..., int(fs) :].reshape(*data.shape[:2], len(BIN_EDGES_S) - 1, -1).mean(-1)
    )
    return np.log(bins / baseline).ravel(), (bins - baseline).ravel()


def test_filtering_epoching_and_binning_agree_with_mne(quick_config, quick_study):
    participant = quick_study["sub-001"]
    difference_table, _ = preprocess_participant(
        participant.path, "sub-001", study_settings(quick_config, value="difference")
    )
    difference = difference_table.column("value").to_numpy()
    log_ratio = participant.table["value"].to_numpy()
    reference_log_ratio, reference_difference = mne_reference(
        participant.path, participant.qc["notch_hz"], quick_config["preprocess"]
    )
    print(
        "max |package - MNE|: log ratio "
        f"{np.abs(log_ratio - reference_log_ratio).max():.1e}, difference "
        f"{np.abs(difference - reference_difference).max():.1e} uV"
    )
    np.testing.assert_allclose(
        log_ratio, reference_log_ratio, rtol=0, atol=MNE_TOLERANCE
    )
    np.testing.assert_allclose(
        difference, reference_difference, rtol=0, atol=MNE_TOLERANCE
    )


def test_zscore_is_standardised_over_kept_trials(quick_config, quick_study):
    participant = quick_study["sub-001"]
    table, _ = preprocess_participant(
        participant.path, "sub-001", study_settings(quick_config, value="zscore")
    )
    zscores = table.to_pandas()
    kept = zscores[~zscores["rejected"]].groupby("muscle")["value"]
    np.testing.assert_allclose(kept.mean(), 0, atol=1e-12)
    np.testing.assert_allclose(kept.std(), 1)
    # Standardising keeps the order of the log ratios within each muscle.
    log_ratios = participant.table
    for muscle in quick_config["study"]["muscles"]:
        np.testing.assert_array_equal(
            zscores.loc[zscores["muscle"] == muscle, "value"].rank(),
            log_ratios.loc[log_ratios["muscle"] == muscle, "value"].rank(),
        )


def test_outputs_are_written_with_identical_bytes(quick_config, quick_study, tmp_path):
    participant = quick_study["sub-011"]
    paths = []
    for attempt in ("first", "second"):
        table, qc = preprocess_participant(
            participant.path, "sub-011", study_settings(quick_config)
        )
        paths.append((tmp_path / attempt / "t.parquet", tmp_path / attempt / "qc.json"))
        write_outputs(table, qc, *paths[-1])
    (first_table, first_qc), (second_table, second_qc) = paths
    assert first_table.read_bytes() == second_table.read_bytes()
    assert first_qc.read_bytes() == second_qc.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(first_table), participant.table)
    assert json.loads(first_qc.read_text()) == participant.qc


@pytest.fixture(scope="module")
def low_rate_recording(quick_config, tmp_path_factory):
    """sub-001 recorded at 250 Hz, as some systems export."""
    config = json.loads(json.dumps(quick_config))
    config["simulation"]["sampling_rate_hz"] = 250
    path = tmp_path_factory.mktemp("low-rate") / "sub-001.edf"
    plan = simulate_participant(config, "sub-001", "placebo", path)
    return plan, path, background_log_ratios(config, plan, BIN_EDGES_S)


def test_band_above_nyquist_names_participant_rate_and_usable_edge(
    quick_config, low_rate_recording
):
    _, path, _ = low_rate_recording
    with pytest.raises(RecordingError) as error:
        preprocess_participant(path, "sub-001", study_settings(quick_config))
    message = str(error.value)
    print(message)
    assert "sub-001" in message and str(path) in message
    assert "250 Hz" in message and "below 125 Hz" in message


def test_low_rate_recording_works_with_a_band_that_fits(
    quick_config, low_rate_recording, caplog
):
    plan, path, background = low_rate_recording
    settings = study_settings(quick_config, band_hz=[20.0, 100.0])
    with caplog.at_level(logging.INFO, logger="mimicry"):
        table, qc = preprocess_participant(path, "sub-001", settings)
    assert qc["sampling_rate_hz"] == 250
    assert qc["notch_hz"] == [50.0, 100.0]
    assert qc["skipped_notch_hz"] == [150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0]
    assert "Nyquist" in caplog.text and "150.0" in caplog.text
    assert not qc["excluded"]
    frame = table.to_pandas()
    # One participant, about 11 kept trials per cell: noise about 0.03 per bin.
    for (muscle, condition), cell in frame[~frame["rejected"]].groupby(
        ["muscle", "condition"]
    ):
        measured = cell.groupby("bin")["value"].mean().to_numpy()
        expected = trial_truth(
            plan, background, muscle, condition, cell["trial"].unique()
        )
        error = np.abs(measured - expected)
        print(f"250 Hz {muscle} {condition}: mean |error| {error.mean():.3f}")
        assert error.mean() < 0.05


def write_variant(config, tmp_path, participant, change):
    """The participant's EDF after change(data_uv, plan) edits the signals."""
    plan = plan_participant(config, participant, "placebo")
    data_uv, plan = change(synthesize(plan, config), plan)
    path = tmp_path / f"{participant}.edf"
    write_edf(path, data_uv, plan, config)
    return path


def test_saturated_channel_excludes_the_participant(quick_config, tmp_path):
    def clip_zm(data_uv, plan):
        limit = np.quantile(np.abs(data_uv[0]), 0.99)
        data_uv[0] = np.clip(data_uv[0], -limit, limit)
        return data_uv, plan

    path = write_variant(quick_config, tmp_path, "sub-002", clip_zm)
    table, qc = preprocess_participant(path, "sub-002", study_settings(quick_config))
    assert qc["excluded"]
    assert qc["exclusion_reasons"][0].startswith("saturated_channel:ZM")
    frame = table.to_pandas()
    assert (frame.loc[frame["muscle"] == "ZM", "reason"] == "saturated_channel").all()


def test_trial_whose_window_leaves_the_recording_is_rejected(quick_config, tmp_path):
    def end_three_seconds_after_last_onset(data_uv, plan):
        fs = quick_config["simulation"]["sampling_rate_hz"]
        end_s = int(np.ceil(plan.trials[-1].onset_s + 3.0))
        return data_uv[:, : end_s * fs], plan

    path = write_variant(
        quick_config, tmp_path, "sub-003", end_three_seconds_after_last_onset
    )
    table, qc = preprocess_participant(path, "sub-003", study_settings(quick_config))
    frame = table.to_pandas()
    last = frame["trial"] == frame["trial"].max()
    assert (frame.loc[last, "reason"] == "outside_recording").all()
    assert qc["muscles"]["ZM"]["rejected_by_reason"]["outside_recording"] == 1


def test_condition_without_trials_excludes_the_participant(quick_config, tmp_path):
    def only_angry_to_happy(data_uv, plan):
        trials = tuple(
            replace(trial, condition="AngryToHappy") for trial in plan.trials
        )
        return data_uv, replace(plan, trials=trials)

    path = write_variant(quick_config, tmp_path, "sub-004", only_angry_to_happy)
    _, qc = preprocess_participant(path, "sub-004", study_settings(quick_config))
    assert "too_few_trials:ZM/HappyToAngry 0/0 < 50%" in qc["exclusion_reasons"]
    assert qc["muscles"]["CS"]["cells"]["HappyToAngry"]["total"] == 0


def three_condition_config(quick_config, trials_per_condition):
    """The quick study with a third, neutral condition and no artifacts or flaws."""
    config = copy.deepcopy(quick_config)
    config["study"]["conditions"] = ["AngryToHappy", "HappyToAngry", "Neutral"]
    simulation = config["simulation"]
    simulation["trials_per_condition"] = trials_per_condition
    for muscle in config["study"]["muscles"]:
        simulation["cells"][muscle]["Neutral"] = {"a": 0.0, "b": 0.0, "c": 0.5}
    simulation["artifact_trial_share"] = 0.0
    simulation["flawed_participants"] = {"flat_channel": [], "too_few_trials": []}
    return config


# Log ratios of 1-1.5 in one condition, as in strong responders of real studies; with
# three conditions this cell sits far from the participant's other trials, which a
# robust z over all of a muscle's trials reads as outliers: the rule that preceded
# preprocess.rejection rejected all 4 (and all 40) and excluded the participant.
STRONG_ZM_HAPPY = {"a": 1.5, "b": 0.0, "c": 1.0}


@pytest.mark.parametrize("trials_per_condition", [4, 40])
def test_strong_responder_keeps_every_trial(
    clean_quick_config, tmp_path, trials_per_condition
):
    # Clean: this participant's asymptote is STRONG_ZM_HAPPY's, give or take 0.06.
    config = three_condition_config(clean_quick_config, trials_per_condition)
    config["simulation"]["cells"]["ZM"]["AngryToHappy"] = STRONG_ZM_HAPPY
    path = tmp_path / "sub-001.edf"
    simulate_participant(config, "sub-001", "placebo", path)
    table, qc = preprocess_participant(path, "sub-001", study_settings(config))
    frame = table.to_pandas()
    strong = frame[(frame["muscle"] == "ZM") & (frame["condition"] == "AngryToHappy")]
    late = strong.loc[strong["t"] > 2.0, "value"].mean()
    print(f"{trials_per_condition} per condition: late ZM log ratio {late:.2f}", qc)
    assert 1.0 < late < 1.6
    assert qc["rejected_trials"] == []
    assert not qc["excluded"]


def test_rejection_can_be_turned_off(quick_config, quick_study):
    participant = quick_study["sub-012"]
    assert participant.qc["rejected_trials"]
    settings = study_settings(quick_config, rejection={"rules": []})
    table, qc = preprocess_participant(participant.path, "sub-012", settings)
    assert qc["rejection"]["rules"] == []
    assert qc["rejected_trials"] == [] and not qc["excluded"]
    assert not table.column("rejected").to_numpy().any()


def add_bursts(config, trials, muscle_index, start_s, duration_s, factor):
    """A change for write_variant: a burst of EMG-like noise, factor x the muscle's
    rest amplitude, in each given trial."""

    def change(data_uv, plan):
        fs = config["simulation"]["sampling_rate_hz"]
        muscle = config["study"]["muscles"][muscle_index]
        rng = np.random.default_rng(0)
        n_samples = round(duration_s * fs)
        for trial in trials:
            start = round((plan.trials[trial].onset_s + start_s) * fs)
            burst = emg_noise(rng, n_samples, fs) * np.hanning(n_samples)
            data_uv[muscle_index, start : start + n_samples] += (
                factor * plan.baseline_amplitude_uv[muscle] * burst
            )
        return data_uv, plan

    return change


@pytest.mark.parametrize(
    "min_kept_share, n_bursts, exclusion",
    [
        (0.5, 2, None),
        (0.5, 3, "too_few_trials:ZM/AngryToHappy 1/4 < 50%"),
        (0.0, 2, None),
        (0.0, 3, "too_few_trials:ZM/AngryToHappy 1/4 < 2 trials"),
    ],
)
def test_four_trials_per_condition_need_two_kept(
    steady_quick_config, tmp_path, min_kept_share, n_bursts, exclusion
):
    config = three_condition_config(steady_quick_config, 4)
    plan = plan_participant(config, "sub-005", "placebo")
    happy = [t.index for t in plan.trials if t.condition == "AngryToHappy"]
    change = add_bursts(config, happy[:n_bursts], 0, 2.0, 0.3, 20.0)
    path = write_variant(config, tmp_path, "sub-005", change)
    settings = study_settings(config, min_kept_share=min_kept_share)
    _, qc = preprocess_participant(path, "sub-005", settings)
    rejected = [(r["trial"], r["muscle"], r["reason"]) for r in qc["rejected_trials"]]
    assert rejected == [(trial, "ZM", "transient") for trial in happy[:n_bursts]]
    assert qc["exclusion_reasons"] == ([exclusion] if exclusion else [])


def scale_stretch(config, trial, muscle_index, factor, window_s):
    """A change for write_variant: one trial's EMG scaled by factor over window_s
    (s from its onset), a sustained change with steps at both ends."""

    def change(data_uv, plan):
        fs = config["simulation"]["sampling_rate_hz"]
        onset = plan.trials[trial].onset_s
        start, stop = (round((onset + edge) * fs) for edge in window_s)
        data_uv[muscle_index, start:stop] *= factor
        return data_uv, plan

    return change


def test_raised_baseline_is_rejected_by_the_baseline_rule(
    steady_quick_config, tmp_path
):
    """Tension from 3 s before the onset to the onset: a step, no transient, half
    again as large as the rule's ratio."""
    config = copy.deepcopy(steady_quick_config)
    config["simulation"]["artifact_trial_share"] = 0.0
    step = 1.5 * config["preprocess"]["rejection"]["baseline_ratio"]
    path = write_variant(
        config, tmp_path, "sub-007", scale_stretch(config, 5, 0, step, (-3.0, 0.0))
    )
    rejected = {}
    for rules in (["transient", "baseline"], ["transient"]):
        settings = study_settings(config, rejection={"rules": rules})
        _, qc = preprocess_participant(path, "sub-007", settings)
        rejected[len(rules)] = qc["rejected_trials"]
        print(rules, qc["rejected_trials"])
    assert [(r["trial"], r["muscle"], r["reason"]) for r in rejected[2]] == [
        (5, "ZM", "baseline")
    ]
    # The detail reports the baseline against the median: the step's scaling.
    factor = re.match(r"baseline ([\d.]+) x the median", rejected[2][0]["detail"])
    assert float(factor.group(1)) == pytest.approx(step, rel=0.1)
    assert rejected[1] == []


@pytest.mark.parametrize("trials_per_condition", [12, 40])
def test_condition_outlier_rule_judges_cells_with_enough_trials(
    steady_quick_config, tmp_path, trials_per_condition
):
    """A trial raised 6-fold over 3 s of its response: no transient, baseline intact,
    so only the (opt-in) condition_outlier rule sees it, and only in large cells."""
    config = copy.deepcopy(steady_quick_config)
    config["simulation"]["trials_per_condition"] = trials_per_condition
    config["simulation"]["artifact_trial_share"] = 0.0
    change = scale_stretch(config, 3, 0, 6.0, (1.0, 4.0))
    path = write_variant(config, tmp_path, "sub-006", change)
    rules = ["transient", "baseline", "condition_outlier"]
    rejected = {}
    for name, rejection in (("default", None), ("opt-in", {"rules": rules})):
        _, qc = preprocess_participant(
            path, "sub-006", study_settings(config, rejection=rejection)
        )
        rejected[name] = {(r["trial"], r["muscle"]): r for r in qc["rejected_trials"]}
        print(name, qc["rejected_trials"])
    assert rejected["default"] == {}
    minimum = config["preprocess"]["rejection"]["condition_min_trials"]
    if trials_per_condition < minimum:
        assert rejected["opt-in"] == {}
    else:
        assert rejected["opt-in"][3, "ZM"]["reason"] == "condition_outlier"
        assert f"among the {trials_per_condition} kept" in (
            rejected["opt-in"][3, "ZM"]["detail"]
        )


SETTING_PROBLEMS = {
    "band order": (
        {"band_hz": [450.0, 20.0]},
        "preprocess.band_hz [450.0, 20.0]: need low < high",
    ),
    "baseline after response start": (
        {"baseline_s": [-1.0, 0.5]},
        "preprocess.baseline_s [-1.0, 0.5] must be an interval that ends before "
        "preprocess.response_s [0.0, 6.0] starts",
    ),
    "bin does not divide": (
        {"bin_s": 0.7},
        "preprocess.bin_s 0.7 must divide the response window",
    ),
    "transient context": (
        {"rejection": {"transient_context_s": 0.1}},
        "preprocess.rejection.transient_context_s 0.1 must be at least twice "
        "preprocess.rejection.transient_window_s 0.1",
    ),
    "epoch longer than the onset spacing": (
        {"response_s": [0.0, 8.0]},
        "spans 9 s, more than the 8 s between simulated onsets "
        "(simulation.trial_onset_spacing_s 9 s minus 1 s jitter)",
    ),
}


@pytest.mark.parametrize("case", SETTING_PROBLEMS, ids=list(SETTING_PROBLEMS))
def test_inconsistent_settings_name_the_keys(quick_config, case):
    change, message = SETTING_PROBLEMS[case]
    config = copy.deepcopy(quick_config)
    for key, value in change.items():
        if isinstance(value, dict):
            config["preprocess"][key].update(value)
        else:
            config["preprocess"][key] = value
    sheet = read_sample_sheet(PROJECT_ROOT / config["participants"])
    check_config(quick_config, sheet["participant_id"])
    with pytest.raises(ConfigError) as error:
        check_config(config, sheet["participant_id"])
    print(error.value)
    assert message in str(error.value)


@pytest.mark.workflow
def test_inconsistent_setting_stops_the_run_before_any_job(workflow_copy):
    (workflow_copy / "bad.yaml").write_text(
        yaml.safe_dump({"preprocess": {"bin_s": 0.7}})
    )
    result = run_snakemake(
        workflow_copy, "--cores", "1", "--configfile", "bad.yaml", check=False
    )
    assert result.returncode != 0
    assert "preprocess.bin_s 0.7 must divide" in result.stdout + result.stderr
    assert not (workflow_copy / "resources").exists()


# At 250 Hz one sample is 4 ms: a 1 ms baseline rounds to no sample.
SUB_SAMPLE_BASELINE = {"baseline_s": [-0.001, 0.0]}


def test_a_window_shorter_than_a_sample_stops_the_participant_naming_key_and_rate(
    quick_config, low_rate_recording
):
    """Where the rate is known only from the recording (e.g. a download): the job
    stops instead of publishing all-NaN values."""
    _, path, _ = low_rate_recording
    settings = study_settings(
        quick_config, band_hz=[20.0, 100.0], **SUB_SAMPLE_BASELINE
    )
    with pytest.raises(RecordingError) as error:
        preprocess_participant(path, "sub-001", settings)
    assert str(error.value).startswith(
        f"sub-001: {path}: preprocess.baseline_s [-0.001, 0.0] holds no sample at "
        "250 Hz (one sample every 4 ms)"
    )
    # A two-sample baseline is a baseline.
    settings["preprocess"]["baseline_s"] = [-0.008, 0.0]
    table, _ = preprocess_participant(path, "sub-001", settings)
    assert np.isfinite(table.column("value").to_numpy()).any()


@pytest.mark.workflow
def test_a_window_shorter_than_a_sample_stops_the_run_before_any_job(workflow_copy):
    # The quick study is simulated at 1000 Hz: 0.4 ms is no sample.
    overrides = {"preprocess": {"baseline_s": [-0.0004, 0.0]}}
    (workflow_copy / "short.yaml").write_text(yaml.safe_dump(overrides))
    result = run_snakemake(
        workflow_copy,
        "--cores",
        "1",
        "--configfile",
        "config/quick.yaml",
        "short.yaml",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert (
        "preprocess.baseline_s [-0.0004, 0.0] holds no sample at 1000 Hz (one "
        "sample every 1 ms): lengthen it; the rate of sub-001, sub-002, sub-003 and "
        "9 more (simulation.sampling_rate_hz)"
    ) in output, output
    assert not (workflow_copy / "resources").exists()


@pytest.mark.workflow
def test_preprocess_declares_more_memory_than_a_long_recording_needs(workflow_copy):
    """30 min at 2 kHz, 8 channels: the rule's mem_mb comes from the file's header
    and exceeds the job's measured peak (the default 1000 MB would not have
    scaled: 3 h at 2 kHz peak at 1.8 GB)."""
    raw = workflow_copy / "long"
    raw.mkdir()
    write_long_edf(
        raw / "sub-001.edf", 30 * 60, 2000, 8, ["AngryToHappy", "HappyToAngry"]
    )
    (workflow_copy / "long.tsv").write_text("participant_id\tgroup\nsub-001\tplacebo\n")
    (workflow_copy / "long.yaml").write_text(
        yaml.safe_dump(
            {
                "participants": "long.tsv",
                "source": {"kind": "local", "local_dir": "long"},
            }
        )
    )
    target = "results/preprocessed/sub-001.parquet"
    arguments = (
        target,
        "--cores",
        "1",
        "--configfile",
        "config/quick.yaml",
        "long.yaml",
    )
    planned = run_snakemake(workflow_copy, *arguments, "-n").stdout
    declared_mib = int(re.search(r"rule preprocess:.*?mem_mib=(\d+)", planned, re.S)[1])
    # The peak RSS of Snakemake and the job it waits for, in a process of its own
    # (this test process's children include earlier, larger runs).
    measure = (
        "import resource, subprocess, sys; "
        "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    measured = subprocess.run(
        [sys.executable, "-c", measure, snakemake, *arguments],
        cwd=workflow_copy,
        check=True,
        capture_output=True,
        text=True,
    )
    peak_mib = int(measured.stdout) / 1024
    assert peak_mib < declared_mib, (peak_mib, declared_mib)
    # Not a bound that any job meets: the recording's samples dominate the peak.
    assert peak_mib > 300, peak_mib
