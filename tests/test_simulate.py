"""The simulated study: deterministic files that MNE reads and that carry their truth."""

import json

import mne
import numpy as np
import pandas as pd
import pytest
from scipy import signal

from mimicry.asymptotic import binned_log_ratio
from mimicry.bayes.synthetic import synthetic_cells
from mimicry.devtools import run_snakemake
from mimicry.simulate import (
    background_log_ratios,
    level_fluctuation,
    plan_participant,
    simulate_participant,
    study_truth,
)

BIN_EDGES_S = np.arange(0.0, 6.01, 0.5)
# Mean of ~40 trials of log(bin mean / baseline mean): sampling noise of each trial's
# bin is about 0.05 and the trials' own asymptote spread 0.10, so the mean is within
# about 0.02 of the curve; 0.04 leaves room without hiding a wrong curve (effects 0.1-0.15).
ENVELOPE_TOLERANCE = 0.04
ARTIFACT_PEAK_RATIO = 5.0


def read(path):
    return mne.io.read_raw_edf(path, preload=True, verbose="error")


def rectified(raw):
    """The recording band-passed, notched and rectified: (channel, sample)."""
    fs = raw.info["sfreq"]
    sos = signal.butter(4, (20, 450), btype="bandpass", fs=fs, output="sos")
    data = signal.sosfiltfilt(sos, raw.get_data(units="uV"), axis=1)
    for harmonic in (50, 150, 250, 350, 450):
        b, a = signal.iirnotch(harmonic, 30, fs)
        data = signal.filtfilt(b, a, data, axis=1)
    return np.abs(data)


def rectified_epochs(raw):
    """Band-passed, notched, rectified epochs -1..6 s: (channel, trial, sample)."""
    fs = raw.info["sfreq"]
    onsets = np.round(raw.annotations.onset * fs).astype(int)
    window = np.arange(int(-1 * fs), int(6 * fs))
    return rectified(raw)[:, onsets[:, None] + window[None, :]], fs


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
    background = background_log_ratios(default_config, plan, BIN_EDGES_S)
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
            ) + background[muscle][trials].mean(axis=0)
            measured = log_ratio[channel, trials].mean(axis=0)
            error = np.abs(measured - expected).max()
            print(f"{muscle} {condition}: max |measured - truth| = {error:.3f}")
            assert error < ENVELOPE_TOLERANCE


def test_flawed_trials_and_participants_are_flawed_in_the_file(
    steady_quick_config, tmp_path
):
    """On a steady background the artifacts' peaks stand out from every other
    trial's (a spontaneous burst's can too: see the bursts' own test)."""
    config = steady_quick_config
    truth = {}
    for participant in ("sub-001", "sub-011", "sub-012"):
        path = tmp_path / f"{participant}.edf"
        plan = simulate_participant(config, participant, "placebo", path)
        truth[participant] = plan
        raw = read(path)
        if plan.flaw == "flat_channel":
            flat = raw.ch_names.index(config["channels"][plan.flat_muscle])
            assert np.ptp(raw.get_data()[flat]) == 0
            continue
        epochs, _ = rectified_epochs(raw)
        peaks = epochs.max(axis=2)
        for channel, muscle in enumerate(config["study"]["muscles"]):
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


def test_level_fluctuation_has_the_configured_sd_and_time_constants(
    default_config, default_participants
):
    """The log level, over its participant's scale, has the components' summed
    variance, and the autocorrelation they give at lags near each time constant."""
    fs = default_config["simulation"]["sampling_rate_hz"]
    components = default_config["simulation"]["level_fluctuation"]["components"]
    variances = np.array([component["sd"] ** 2 for component in components])
    time_constants = np.array([c["time_constant_s"] for c in components])
    lags_s = np.array([1, 10])
    squares, products = [], []
    for participant, group in default_participants[:8]:
        plan = plan_participant(default_config, participant, group)
        for muscle, level in level_fluctuation(default_config, plan, fs).items():
            level = level / plan.level_fluctuation_scale[muscle]
            squares.append(np.mean(level**2))
            products.append(
                [np.mean(level[:-lag] * level[lag:]) for lag in lags_s * fs]
            )
    variance = np.mean(squares)
    autocorrelation = np.mean(products, axis=0) / variance
    expected = (variances * np.exp(-lags_s[:, None] / time_constants)).sum(
        axis=1
    ) / variances.sum()
    print(
        f"variance {variance:.3f} (configured {variances.sum():.3f}), "
        f"autocorrelation at {lags_s} s {autocorrelation} (expected {expected})"
    )
    # 16 channels of 20 min: the variance's sampling error is about 6%.
    assert variance == pytest.approx(variances.sum(), rel=0.2)
    np.testing.assert_allclose(autocorrelation, expected, atol=0.08)


def test_spontaneous_bursts_follow_their_settings(default_config, default_participants):
    settings = default_config["simulation"]["spontaneous_bursts"]
    log_rates, durations, excess = [], [], []
    for participant, group in default_participants:
        plan = plan_participant(default_config, participant, group)
        for bursts in plan.spontaneous_bursts.values():
            log_rates.append(np.log(len(bursts) / plan.duration_s))
            durations += [burst.duration_s for burst in bursts]
            excess += [burst.peak_factor - 1 for burst in bursts]
            starts = [burst.start_s for burst in bursts]
            assert starts == sorted(starts) and 0 <= starts[0] < plan.duration_s
    log_excess = np.log(excess)
    # 260 channels and 60,000 bursts: sampling errors of about 4% for the rate's median
    # and sd, below 1% for the excess's.
    assert np.exp(np.median(log_rates)) == pytest.approx(
        settings["rate_per_s"], rel=0.15
    )
    assert np.std(log_rates) == pytest.approx(
        settings["participant_rate_log_sd"], rel=0.15
    )
    low, high = settings["duration_s"]
    assert low <= min(durations) and max(durations) <= high
    assert np.exp(np.median(log_excess)) == pytest.approx(
        settings["excess_median"], rel=0.05
    )
    assert np.std(log_excess) == pytest.approx(settings["excess_log_sd"], rel=0.05)


def test_spontaneous_bursts_are_in_the_file_where_the_truth_lists_them(
    default_config, clean_participant
):
    """Each isolated burst raises the rectified EMG over its span by what its Hann
    window of peak_factor gives, against the median of 0.1 s windows within 1 s."""
    plan, path = clean_participant
    raw = read(path)
    fs = int(raw.info["sfreq"])
    envelope = rectified(raw)
    artifacts = [
        (
            trial.onset_s + trial.artifact.start_s,
            trial.artifact.duration_s,
            trial.artifact.muscles,
        )
        for trial in plan.trials
        if trial.artifact is not None
    ]
    measured, expected = [], []
    for channel, muscle in enumerate(default_config["study"]["muscles"]):
        bursts = plan.spontaneous_bursts[muscle]
        events = [(b.start_s, b.duration_s) for b in bursts] + [
            (start, duration)
            for start, duration, muscles in artifacts
            if muscle in muscles
        ]
        for burst in bursts:
            end_s = burst.start_s + burst.duration_s
            others = [
                (start, duration)
                for start, duration in events
                if start != burst.start_s
                and start < end_s + 1.5
                and start + duration > burst.start_s - 1.5
            ]
            if others or burst.start_s < 2 or end_s > plan.duration_s - 2:
                continue
            start, stop = round(burst.start_s * fs), round(end_s * fs)
            around = np.concatenate(
                [
                    envelope[channel, start - fs : start],
                    envelope[channel, stop : stop + fs],
                ]
            )
            windows = around.reshape(-1, fs // 10).mean(axis=1)
            measured.append(envelope[channel, start:stop].mean() / np.median(windows))
            window = np.hanning(stop - start)
            expected.append(np.mean(1 + (burst.peak_factor - 1) * window))
    measured, expected = np.log(measured), np.log(expected)
    slope, intercept = np.polyfit(expected, measured, 1)
    error = np.median(np.abs(measured - expected))
    print(
        f"{len(measured)} isolated bursts: log measured = {slope:.3f} x log expected "
        f"+ {intercept:.3f}, median |error| {error:.3f}"
    )
    # The level wanders between a burst and the 2 s around it: errors of about 0.1.
    assert len(measured) > 100
    assert 0.85 < slope < 1.15 and abs(intercept) < 0.05
    assert error < 0.2


def test_export_keeps_every_nth_sample(lowrate_config, tmp_path):
    """The 100 Hz file holds every tenth sample of the same recording at 1000 Hz."""
    acquired = json.loads(json.dumps(lowrate_config))
    acquired["simulation"]["export_rate_hz"] = None
    plan = simulate_participant(acquired, "sub-001", "placebo", tmp_path / "full.edf")
    simulate_participant(lowrate_config, "sub-001", "placebo", tmp_path / "low.edf")
    full, low = read(tmp_path / "full.edf"), read(tmp_path / "low.edf")
    simulation = lowrate_config["simulation"]
    step = simulation["sampling_rate_hz"] // simulation["export_rate_hz"]
    assert low.info["sfreq"] == simulation["export_rate_hz"]
    np.testing.assert_array_equal(low.get_data(), full.get_data()[:, ::step])
    np.testing.assert_allclose(
        low.annotations.onset, [t.onset_s for t in plan.trials], atol=1e-6
    )
    truth = study_truth(lowrate_config, [("sub-001", "placebo")])
    assert truth["file_rate_hz"] == simulation["export_rate_hz"]


@pytest.mark.workflow
def test_lowrate_study_runs_through_aggregation_at_100_hz(
    workflow_copy, lowrate_config
):
    """The quick study exported at 100 Hz (config/lowrate.yaml) through a real run,
    on four of its participants (two flawed): every recording is read at that rate
    with the real study's band and no notch, and the flawed ones are excluded."""
    flawed = lowrate_config["simulation"]["flawed_participants"]
    flawed_ids = [*flawed["flat_channel"], *flawed["too_few_trials"]]
    participants = {"sub-001": "placebo", "sub-002": "naltrexone"}
    participants |= dict.fromkeys(flawed_ids, "amisulpride")
    sheet = "participant_id\tgroup\n" + "".join(
        f"{participant}\t{group}\n" for participant, group in participants.items()
    )
    (workflow_copy / "lowrate.tsv").write_text(sheet)
    run_snakemake(
        workflow_copy,
        "--cores",
        "2",
        "results/aggregate/cells.parquet",
        "--configfile",
        "config/quick.yaml",
        "config/lowrate.yaml",
        "--config",
        "participants=lowrate.tsv",
    )
    preprocess = lowrate_config["preprocess"]
    qcs = {
        path.stem: json.loads(path.read_text())
        for path in (workflow_copy / "results" / "qc").glob("*.json")
    }
    assert set(qcs) == set(participants)
    for qc in qcs.values():
        assert qc["sampling_rate_hz"] == lowrate_config["simulation"]["export_rate_hz"]
        assert qc["band_hz"] == preprocess["band_hz"] and qc["notch_hz"] == []
    for participant in flawed_ids:
        assert qcs[participant]["excluded"], participant
    cells = pd.read_parquet(workflow_copy / "results/aggregate/cells.parquet")
    kept = {participant for participant, qc in qcs.items() if not qc["excluded"]}
    assert kept and set(cells["participant"]) == kept
