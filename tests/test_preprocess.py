"""Preprocessing of the simulated quick study: truth recovery, artifact rejection,
participant exclusion, agreement with MNE's own filters and epochs, bad inputs."""

import json
import logging
import re
from dataclasses import dataclass, replace

import mne
import numpy as np
import pandas as pd
import pytest
import yaml

from mimicry.asymptotic import binned_log_ratio
from mimicry.devtools import PROJECT_ROOT
from mimicry.preprocess import (
    PREPROCESS_DEFAULTS,
    preprocess_participant,
    resolve_preprocess_settings,
    write_outputs,
)
from mimicry.recordings import RECORDING_DEFAULTS, RecordingError
from mimicry.simulate import (
    plan_participant,
    simulate_participant,
    synthesize,
    write_edf,
)
from mimicry.study import read_sample_sheet

BIN_EDGES_S = np.arange(0.0, 6.01, 0.5)
# Mean over about 10 participants x 11 kept trials of log(bin mean / baseline mean),
# compared with the mean of the same trials' true curves (cell + participant + trial
# asymptote, all in the plan): what remains is the sampling noise of rectified EMG
# (about 0.09 per trial and bin, so about 0.01 for the cell mean) and the previous
# trial's decay reaching into some baselines (below 0.02). Observed: at most 0.021.
TIME_COURSE_TOLERANCE = 0.04
MIN_SENSITIVITY = 0.90
MAX_FALSE_REJECTION = 0.05
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


def study_settings(config, **preprocess):
    settings = {
        key: config[key]
        for key in ("study", "channels", "recording", "preprocess")
        if key in config
    }
    settings["preprocess"] = {**settings.get("preprocess", {}), **preprocess}
    return settings


@pytest.fixture(scope="module")
def quick_study(quick_config, tmp_path_factory):
    """Every quick-study participant simulated, preprocessed with the defaults."""
    directory = tmp_path_factory.mktemp("quick-study")
    sheet = read_sample_sheet(PROJECT_ROOT / quick_config["participants"])
    study = {}
    for participant, group in zip(sheet["participant_id"], sheet["group"]):
        path = directory / f"{participant}.edf"
        plan = simulate_participant(quick_config, participant, group, path)
        table, qc = preprocess_participant(
            path, participant, study_settings(quick_config)
        )
        study[participant] = Participant(plan, path, table.to_pandas(), qc)
    return study


def trial_truth(plan, muscle, condition, trials):
    """Mean over the given trials of each trial's expected binned log ratio."""
    cell = plan.cell_parameters[muscle][condition]
    return np.mean(
        [
            binned_log_ratio(
                BIN_EDGES_S,
                cell["a"] + plan.trials[trial].asymptote_deviation[muscle],
                cell["b"],
                cell["c"],
            )
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
                        participant.plan, muscle, condition, kept["trial"].unique()
                    )
                )
            error = np.abs(np.mean(measured, axis=0) - np.mean(expected, axis=0))
            errors[muscle, condition] = error.max()
            print(
                f"{muscle} {condition}: {len(measured)} participants, "
                f"max |recovered - truth| = {error.max():.3f}"
            )
    assert max(errors.values()) < TIME_COURSE_TOLERANCE, errors


def test_injected_artifacts_are_rejected(quick_config, quick_study):
    injected, rejected = [], []
    for participant in quick_study.values():
        plan = participant.plan
        first_bin = participant.table[participant.table["bin"] == 0]
        reasons = first_bin.set_index(["trial", "muscle"])["reason"]
        for trial in plan.trials:
            for muscle in quick_config["study"]["muscles"]:
                if muscle == plan.flat_muscle:
                    continue
                artifact = trial.artifact
                injected.append(artifact is not None and muscle in artifact.muscles)
                rejected.append(reasons[trial.index, muscle] != "")
                if rejected[-1]:
                    assert reasons[trial.index, muscle] in (
                        "baseline_outlier",
                        "bin_outlier",
                    )
    injected, rejected = np.array(injected), np.array(rejected)
    sensitivity = (injected & rejected).sum() / injected.sum()
    false_rejection = (~injected & rejected).sum() / (~injected).sum()
    print(
        f"artifacts: {injected.sum()} injected trial x muscle, sensitivity "
        f"{sensitivity:.1%}; false rejections {(~injected & rejected).sum()} of "
        f"{(~injected).sum()} clean = {false_rejection:.1%}"
    )
    assert sensitivity >= MIN_SENSITIVITY
    assert false_rejection <= MAX_FALSE_REJECTION


def test_flawed_participants_are_excluded_with_their_reason(quick_study):
    for participant_id, participant in quick_study.items():
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
        participant.path, participant.qc["notch_hz"], resolve_preprocess_settings({})
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
    return plan, path


def test_band_above_nyquist_names_participant_rate_and_usable_edge(
    quick_config, low_rate_recording
):
    _, path = low_rate_recording
    with pytest.raises(RecordingError) as error:
        preprocess_participant(path, "sub-001", study_settings(quick_config))
    message = str(error.value)
    print(message)
    assert "sub-001" in message and str(path) in message
    assert "250 Hz" in message and "below 125 Hz" in message


def test_low_rate_recording_works_with_a_band_that_fits(
    quick_config, low_rate_recording, caplog
):
    plan, path = low_rate_recording
    settings = study_settings(quick_config, band_hz=[20.0, 100.0])
    with caplog.at_level(logging.INFO, logger="mimicry.preprocess"):
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
        expected = trial_truth(plan, muscle, condition, cell["trial"].unique())
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


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"band_hz": [450.0, 20.0]}, "band_hz"),
        ({"value": "ratio"}, "value"),
        ({"bin_s": 0.7}, "bin_s"),
        ({"baseline_s": [-1.0, 0.5]}, "baseline_s"),
        ({"bandpass": [20, 450]}, "unknown settings"),
    ],
)
def test_inconsistent_settings_name_the_key(settings, key):
    with pytest.raises(ValueError, match=key):
        resolve_preprocess_settings(settings)


def declared_defaults(schema):
    """The defaults a JSON schema declares, nested like the objects it describes."""
    if "properties" in schema:
        return {
            key: declared_defaults(value) for key, value in schema["properties"].items()
        }
    return schema.get("default")


@pytest.mark.parametrize(
    "section, defaults",
    [("preprocess", PREPROCESS_DEFAULTS), ("recording", RECORDING_DEFAULTS)],
)
def test_schema_defaults_match_the_code(section, defaults):
    """Once the config schema declares a section, its defaults are the code's."""
    schema_path = PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    if section not in schema["properties"]:
        pytest.skip(f"{schema_path.name} has no '{section}' section yet")
    assert declared_defaults(schema["properties"][section]) == defaults
