"""The simulated study: deterministic files that MNE reads and that carry their truth."""

import json

import mne
import numpy as np
import pytest
from scipy import signal

from mimicry.asymptotic import binned_log_ratio
from mimicry.bayes.synthetic import synthetic_cells
from mimicry.simulate import simulate_participant, study_truth

BIN_EDGES_S = np.arange(0.0, 6.01, 0.5)
# Mean of ~40 trials of log(bin mean / baseline mean): sampling noise of each trial's
# bin is about 0.05 and the trials' own asymptote spread 0.10, so the mean is within
# about 0.02 of the curve; 0.04 leaves room without hiding a wrong curve (effects 0.1-0.15).
ENVELOPE_TOLERANCE = 0.04
ARTIFACT_PEAK_RATIO = 5.0


def read(path):
    return mne.io.read_raw_edf(path, preload=True, verbose="error")


def rectified_epochs(raw):
    """Band-passed, notched, rectified epochs -1..6 s: (channel, trial, sample)."""
    fs = raw.info["sfreq"]
    sos = signal.butter(4, (20, 450), btype="bandpass", fs=fs, output="sos")
    data = signal.sosfiltfilt(sos, raw.get_data(units="uV"), axis=1)
    for harmonic in (50, 150, 250, 350, 450):
        b, a = signal.iirnotch(harmonic, 30, fs)
        data = signal.filtfilt(b, a, data, axis=1)
    onsets = np.round(raw.annotations.onset * fs).astype(int)
    window = np.arange(int(-1 * fs), int(6 * fs))
    return np.abs(data[:, onsets[:, None] + window[None, :]]), fs


def artifact_hits(plan, muscle):
    return np.array(
        [t.artifact is not None and muscle in t.artifact.muscles for t in plan.trials]
    )


@pytest.fixture(scope="module")
def clean_participant(default_config, tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "sub-001.edf"
    plan = simulate_participant(default_config, "sub-001", "placebo", path)
    assert plan.flaw is None
    return plan, path


def test_same_participant_is_byte_identical_and_participants_differ(
    quick_config, tmp_path
):
    simulate_participant(quick_config, "sub-001", "placebo", tmp_path / "first.edf")
    simulate_participant(quick_config, "sub-001", "placebo", tmp_path / "again.edf")
    simulate_participant(quick_config, "sub-002", "placebo", tmp_path / "other.edf")
    first = (tmp_path / "first.edf").read_bytes()
    assert first == (tmp_path / "again.edf").read_bytes()
    assert first != (tmp_path / "other.edf").read_bytes()


def test_edf_reads_back_with_channels_rate_units_and_annotations(
    default_config, clean_participant
):
    plan, path = clean_participant
    raw = read(path)
    simulation = default_config["simulation"]
    expected_channels = [default_config["channels"][m] for m in ("ZM", "CS")]
    assert raw.ch_names == expected_channels
    assert raw.info["sfreq"] == simulation["sampling_rate_hz"]
    assert set(raw._orig_units.values()) == {"µV"}
    labels, counts = np.unique(raw.annotations.description, return_counts=True)
    assert dict(zip(labels, counts)) == {
        condition: simulation["trials_per_condition"]
        for condition in default_config["study"]["conditions"]
    }
    np.testing.assert_allclose(
        raw.annotations.onset, [t.onset_s for t in plan.trials], atol=1e-6
    )


def test_power_lies_in_the_emg_band_with_a_mains_line(
    default_config, clean_participant
):
    _, path = clean_participant
    raw = read(path)
    frequencies, power = signal.welch(
        raw.get_data(units="uV"), fs=raw.info["sfreq"], nperseg=4096
    )
    in_band = (frequencies >= 20) & (frequencies <= 450)
    band_share = power[:, in_band].sum(axis=1) / power.sum(axis=1)
    assert (band_share > 0.8).all(), band_share
    mains = default_config["simulation"]["mains_hz"]
    line = power[:, np.argmin(np.abs(frequencies - mains))]
    neighbourhood = np.median(
        power[
            :, (np.abs(frequencies - mains) > 2) & (np.abs(frequencies - mains) < 10)
        ],
        axis=1,
    )
    assert (line > 10 * neighbourhood).all(), line / neighbourhood


def test_measured_envelope_follows_the_true_time_course(
    default_config, clean_participant
):
    plan, path = clean_participant
    raw = read(path)
    epochs, fs = rectified_epochs(raw)
    baseline_samples = int(fs)
    baseline = epochs[:, :, :baseline_samples].mean(axis=2)
    n_bins = len(BIN_EDGES_S) - 1
    bins = epochs[:, :, baseline_samples:].reshape(*epochs.shape[:2], n_bins, -1)
    log_ratio = np.log(bins.mean(axis=3) / baseline[..., None])
    conditions = np.array([t.condition for t in plan.trials])
    for channel, muscle in enumerate(default_config["study"]["muscles"]):
        for condition in default_config["study"]["conditions"]:
            trials = (conditions == condition) & ~artifact_hits(plan, muscle)
            cell = plan.cell_parameters[muscle][condition]
            trial_shift = np.mean(
                [
                    plan.trials[i].asymptote_deviation[muscle]
                    for i in np.flatnonzero(trials)
                ]
            )
            expected = binned_log_ratio(
                BIN_EDGES_S, cell["a"] + trial_shift, cell["b"], cell["c"]
            )
            measured = log_ratio[channel, trials].mean(axis=0)
            error = np.abs(measured - expected).max()
            print(f"{muscle} {condition}: max |measured - truth| = {error:.3f}")
            assert error < ENVELOPE_TOLERANCE


def test_flawed_trials_and_participants_are_flawed_in_the_file(quick_config, tmp_path):
    truth = {}
    for participant in ("sub-001", "sub-011", "sub-012"):
        path = tmp_path / f"{participant}.edf"
        plan = simulate_participant(quick_config, participant, "placebo", path)
        truth[participant] = plan
        raw = read(path)
        if plan.flaw == "flat_channel":
            flat = raw.ch_names.index(quick_config["channels"][plan.flat_muscle])
            assert np.ptp(raw.get_data()[flat]) == 0
            continue
        epochs, _ = rectified_epochs(raw)
        peaks = epochs.max(axis=2)
        for channel, muscle in enumerate(quick_config["study"]["muscles"]):
            hits = artifact_hits(plan, muscle)
            ratio = peaks[channel] / np.median(peaks[channel, ~hits])
            np.testing.assert_array_equal(ratio > ARTIFACT_PEAK_RATIO, hits)
    assert truth["sub-011"].flaw == "flat_channel"
    too_few = truth["sub-012"]
    assert too_few.flaw == "too_few_trials"
    share = np.mean([t.artifact is not None for t in too_few.trials])
    assert share > 0.5, share


def test_truth_lists_every_participant_with_its_flaws(quick_config, tmp_path):
    participants = [("sub-001", "placebo"), ("sub-011", "naltrexone")]
    truth = json.loads(json.dumps(study_truth(quick_config, participants)))
    assert set(truth["participants"]) == {"sub-001", "sub-011"}
    assert truth["participants"]["sub-011"]["flaw"] == "flat_channel"
    assert truth["participants"]["sub-001"]["flaw"] is None
    assert truth["group_cells"]["placebo"] == quick_config["simulation"]["cells"]


def test_configured_drug_effect_shifts_only_its_group(quick_config):
    config = json.loads(json.dumps(quick_config))
    config["simulation"]["drug_effects"] = [
        {
            "group": "naltrexone",
            "muscle": "ZM",
            "condition": "AngryToHappy",
            "parameter": "a",
            "value": 0.05,
        }
    ]
    truth = study_truth(config, [])
    cells = config["simulation"]["cells"]
    shifted = truth["group_cells"]["naltrexone"]["ZM"]["AngryToHappy"]["a"]
    assert shifted == pytest.approx(cells["ZM"]["AngryToHappy"]["a"] + 0.05)
    assert truth["group_cells"]["placebo"] == cells
    assert truth["group_cells"]["amisulpride"] == cells


def participant_cell_means(config, participants):
    """Each participant's 0-6 s mean per muscle x condition, from the curves its
    plan gives its recording (the files follow them: see the envelope test above),
    without the noise of preprocessing."""
    cells = synthetic_cells(config, participants, noise_sd=0.0)
    keys = ["participant", "muscle", "condition"]
    return cells.groupby(keys)["y"].mean().unstack("condition")


def test_default_study_varies_as_real_recordings_do(
    default_config, default_participants
):
    """Targets from a real facial-mimicry study (sd of participant cell means
    0.16-0.45) and the paper (means beyond its axes, clear group-level mimicry)."""
    means = participant_cell_means(default_config, default_participants)
    spread = means.groupby("muscle").std()
    assert ((spread > 0.10) & (spread < 0.30)).all().all(), spread
    assert (means.abs() > 0.5).sum().sum() >= 3
    first, second = default_config["study"]["conditions"][:2]
    mimicry = (means[first] - means[second]).groupby("muscle")
    t_statistic = mimicry.mean() / mimicry.std() * np.sqrt(mimicry.count())
    assert t_statistic["ZM"] > 5 and t_statistic["CS"] < -5, t_statistic
    assert default_config["simulation"]["drug_effects"] == []


def test_clean_study_is_clean(clean_config, default_participants):
    means = participant_cell_means(clean_config, default_participants)
    spread = means.groupby("muscle").std()
    assert (spread < 0.06).all().all(), spread
