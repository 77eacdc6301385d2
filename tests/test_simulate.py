"""The simulated study: deterministic files that MNE reads and that carry their truth."""

import copy
import importlib.util
import json
import subprocess

import mne
import numpy as np
import pandas as pd
import pytest
from scipy import signal

from mimicry.asymptotic import binned_log_ratio
from mimicry.bayes.synthetic import synthetic_cells
from helpers.devtools import PROJECT_ROOT, run_snakemake
from mimicry.config.sample_sheet import read_sample_sheet
from mimicry.io.recordings import read_recording
from mimicry.simulate import (
    TRIGGER_LABEL,
    background_log_ratios,
    counterbalanced_sessions,
    level_fluctuation,
    plan_participant,
    sheet_recording,
    sheet_recordings,
    simulate_participant,
    stimulus_onsets_s,
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


@pytest.fixture(scope="module")
def session_recording(default_config, tmp_path_factory):
    """The second session of a crossover participant, with a treatment effect and a
    period effect in its cells."""
    config = copy.deepcopy(default_config)
    config["simulation"]["drug_effects"] = [
        {
            "group": "naltrexone",
            "muscle": "ZM",
            "condition": config["study"]["conditions"][0],
            "parameter": "a",
            "value": 0.3,
        }
    ]
    config["simulation"]["period_effects"] = [
        {"period": 2, "parameter": "a", "value": -0.1}
    ]
    path = tmp_path_factory.mktemp("raw") / "sub-001_ses-2.edf"
    plan = simulate_participant(config, "sub-001", "naltrexone", path, "2", 2)
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


@pytest.mark.parametrize("recording", ["clean_participant", "session_recording"])
def test_measured_envelope_follows_the_true_time_course(
    default_config, recording, request
):
    """In a participant's only recording, and in a session of a crossover study
    (whose level fluctuation and noise come from the session's own streams)."""
    plan, path = request.getfixturevalue(recording)
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


# The commit before the simulator knew sessions and blocks: a parallel-group study's
# files and truth must stay what it made (update it when changing them on purpose).
PARALLEL_REFERENCE_COMMIT = "80e18b18b9d0f0dd4727456d9e541cbdb3098d43"


def simulate_module_at(commit):
    """mimicry.simulate as it was at commit, or a skip when git cannot show it."""
    shown = subprocess.run(
        ["git", "show", f"{commit}:src/mimicry/simulate.py"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        pytest.skip(f"git cannot show the simulator at {commit}: {shown.stderr}")
    spec = importlib.util.spec_from_loader(f"simulate_at_{commit[:8]}", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(shown.stdout, module.__dict__)
    return module


def test_parallel_study_files_and_truth_are_as_before_sessions(quick_config, tmp_path):
    """Files and truth of recordings without a session, from today's code and from
    the simulator before sessions and blocks existed, with the same configuration."""
    before = simulate_module_at(PARALLEL_REFERENCE_COMMIT)
    sheet = read_sample_sheet(PROJECT_ROOT / quick_config["participants"])
    participants = list(zip(sheet["participant_id"], sheet["group"]))
    flawed = quick_config["simulation"]["flawed_participants"]
    for participant, group in participants:
        if participant not in ("sub-001", "sub-002", *flawed["flat_channel"]):
            continue
        simulate_participant(quick_config, participant, group, tmp_path / "now.edf")
        before.simulate_participant(
            quick_config, participant, group, tmp_path / "before.edf"
        )
        now = (tmp_path / "now.edf").read_bytes()
        assert now == (tmp_path / "before.edf").read_bytes(), participant
    assert json.dumps(study_truth(quick_config, participants)) == json.dumps(
        before.study_truth(quick_config, participants)
    )


def without_session_deviation(plan):
    """The recording's a and c per muscle x condition (flattened), without its
    session's own deviation of a."""
    return [
        value
        for muscle, cells in plan.cell_parameters.items()
        for condition, cell in cells.items()
        for value in (
            cell["a"] - plan.session_asymptote_deviation[muscle][condition],
            cell["c"],
        )
    ]


def test_participants_own_response_is_shared_by_its_sessions(quick_config, tmp_path):
    """Response type, outlier status, own deviations, resting amplitude, level scale
    and flaw are the participant's; trials, artifacts, bursts, the session deviation
    and the signal are each session's; participants differ."""
    plans = {
        (participant, session): simulate_participant(
            quick_config,
            participant,
            group,
            tmp_path / f"{participant}_ses-{session}.edf",
            session,
            period,
        )
        for participant, group, session, period in counterbalanced_sessions(
            ["sub-001", "sub-002"], ["placebo", "naltrexone"]
        )
    }
    for participant in ("sub-001", "sub-002"):
        first, second = plans[participant, "1"], plans[participant, "2"]
        for field in (
            "response_type",
            "outlier",
            "baseline_amplitude_uv",
            "level_fluctuation_scale",
        ):
            assert getattr(first, field) == getattr(second, field), field
        # No drug or period effects in the quick study: all else is the participant's.
        assert without_session_deviation(first) == pytest.approx(
            without_session_deviation(second)
        )
        assert first.session_asymptote_deviation != second.session_asymptote_deviation
        assert [t.onset_s for t in first.trials] != [t.onset_s for t in second.trials]
        assert first.spontaneous_bursts != second.spontaneous_bursts
        files = [
            read(tmp_path / f"{participant}_ses-{session}.edf")
            for session in ("1", "2")
        ]
        for raw, plan in zip(files, (first, second)):
            np.testing.assert_allclose(
                raw.annotations.onset, [t.onset_s for t in plan.trials], atol=1e-6
            )
        assert not np.array_equal(files[0].get_data(), files[1].get_data())
    one, other = plans["sub-001", "1"], plans["sub-002", "1"]
    assert one.baseline_amplitude_uv != other.baseline_amplitude_uv
    assert without_session_deviation(one) != without_session_deviation(other)
    flat = quick_config["simulation"]["flawed_participants"]["flat_channel"][0]
    assert [
        plan_participant(quick_config, flat, "placebo", session, period).flaw
        for session, period in (("1", 1), ("2", 2))
    ] == ["flat_channel", "flat_channel"]


def test_treatment_effect_follows_the_sessions_treatment_and_period_its_period(
    quick_config,
):
    """A drug effect shifts the session under that drug whichever session it is; a
    period effect shifts every cell of the second session whatever its drug."""
    config = copy.deepcopy(quick_config)
    muscle, condition = "ZM", config["study"]["conditions"][0]
    config["simulation"]["drug_effects"] = [
        {
            "group": "naltrexone",
            "muscle": muscle,
            "condition": condition,
            "parameter": "a",
            "value": 0.4,
        }
    ]
    config["simulation"]["period_effects"] = [
        {"period": 2, "parameter": "a", "value": -0.15}
    ]
    for participant, first_drug, second_drug in (
        ("sub-003", "placebo", "naltrexone"),
        ("sub-004", "naltrexone", "placebo"),
    ):
        first = plan_participant(config, participant, first_drug, "1", 1)
        second = plan_participant(config, participant, second_drug, "2", 2)
        drug_sign = 1 if second_drug == "naltrexone" else -1
        first_values = without_session_deviation(first)
        second_values = without_session_deviation(second)
        cells = [
            (m, c)
            for m in config["study"]["muscles"]
            for c in config["study"]["conditions"]
        ]
        for index, cell in enumerate(cells):
            drug = 0.4 * drug_sign if cell == (muscle, condition) else 0.0
            a_shift = second_values[2 * index] - first_values[2 * index]
            assert a_shift == pytest.approx(drug - 0.15), (participant, cell)
            assert second_values[2 * index + 1] == pytest.approx(
                first_values[2 * index + 1]
            )
    truth = study_truth(config, [("sub-003", "naltrexone", "2", 2)])
    assert truth["period_effects"] == config["simulation"]["period_effects"]
    recording = truth["participants"]["sub-003_ses-2"]
    assert (recording["group"], recording["session"], recording["period"]) == (
        "naltrexone",
        "2",
        2,
    )


def test_sessions_are_counterbalanced_and_the_truth_lists_each_recording(
    quick_config,
):
    participants = [f"sub-{index:03d}" for index in range(1, 7)]
    groups = ["placebo", "naltrexone", "amisulpride"]
    recordings = counterbalanced_sessions(participants, groups)
    table = pd.DataFrame(
        recordings, columns=["participant", "group", "session", "period"]
    )
    assert all(
        sorted(treatments) == sorted(groups)
        for treatments in table.groupby("participant")["group"].agg(list)
    )
    assert (table.groupby(["period", "group"]).size() == 2).all()
    assert table["session"].astype(int).tolist() == table["period"].tolist()
    truth = study_truth(quick_config, recordings[:6])
    assert list(truth["participants"]) == [
        f"{participant}_ses-{session}" for participant, _, session, _ in recordings[:6]
    ]
    sequences = {
        recording["participant_id"]: recording["sequence"]
        for recording in truth["participants"].values()
    }
    assert sequences == {
        participant: "-".join(groups[index:] + groups[:index])
        for index, participant in enumerate(participants[:2])
    }


def test_example_crossover_sheet_is_counterbalanced():
    """config/examples/crossover: each participant has both treatments, one per
    session, and each order is as frequent as the other."""
    sheet = pd.read_csv(
        PROJECT_ROOT / "config" / "examples" / "crossover" / "participants.tsv",
        sep="\t",
        dtype=str,
    )
    groups = sorted(sheet["group"].unique())
    assert len(groups) == 2
    by_participant = sheet.groupby("participant_id").agg(list)
    assert all(sorted(treatments) == groups for treatments in by_participant["group"])
    assert all(sorted(sessions) == ["1", "2"] for sessions in by_participant["session"])
    sequences = (
        sheet.sort_values("session").groupby("participant_id")["group"].agg("-".join)
    )
    counts = sequences.value_counts()
    assert len(counts) == 2 and counts.iloc[0] == counts.iloc[1], counts


@pytest.fixture(scope="module")
def block_study(quick_config, tmp_path_factory):
    """A quick block-design session at 100 Hz: blocks of 5 stimuli 1 s apart."""
    config = copy.deepcopy(quick_config)
    config["simulation"] |= {
        "block": {"stimuli_per_block": 5, "stimulus_interval_s": 1.0, "pulse_s": 0.02},
        "trials_per_condition": 3,
        "export_rate_hz": 100,
    }
    path = tmp_path_factory.mktemp("block") / "sub-001_ses-1.edf"
    plan = simulate_participant(config, "sub-001", "placebo", path, "1", 1)
    return config, plan, path


@pytest.mark.parametrize("event_source", ["annotations", "stim_channel"])
def test_block_design_has_one_trigger_pulse_per_stimulus(block_study, event_source):
    """The workflow's reader finds every stimulus of every block, each labelled with
    its block's condition, from the annotations or the trigger channel; each block
    starts at its trial's onset."""
    config, plan, path = block_study
    conditions = config["study"]["conditions"]
    recording = copy.deepcopy(config["recording"]) | {"event_source": event_source}
    if event_source == "stim_channel":
        recording["event_labels"] = {str(i + 1): c for i, c in enumerate(conditions)}
    found = read_recording(
        path, plan.recording_id, config["channels"], conditions, recording
    )
    block = config["simulation"]["block"]
    stimuli = [
        (onset, trial.condition)
        for trial in plan.trials
        for onset in stimulus_onsets_s(trial, block)
    ]
    assert len(stimuli) == len(plan.trials) * block["stimuli_per_block"]
    assert [onset for onset, _ in stimuli][:: block["stimuli_per_block"]] == [
        trial.onset_s for trial in plan.trials
    ]
    fs = config["simulation"]["export_rate_hz"]
    assert found.sampling_rate_hz == fs
    np.testing.assert_array_equal(
        found.onset_samples, np.round([onset * fs for onset, _ in stimuli])
    )
    assert list(found.conditions) == [condition for _, condition in stimuli]


def test_block_trigger_pulses_are_short_and_the_truth_lists_them(block_study):
    config, plan, path = block_study
    raw = read(path)
    fs = raw.info["sfreq"]
    trigger = raw.get_data(picks=[TRIGGER_LABEL])[0]
    rises = np.flatnonzero(np.diff(trigger > 0, prepend=0) == 1)
    falls = np.flatnonzero(np.diff(trigger > 0, append=0) == -1)
    widths_s = (falls - rises + 1) / fs
    np.testing.assert_allclose(widths_s, config["simulation"]["block"]["pulse_s"])
    truth = study_truth(config, [("sub-001", "placebo", "1", 1)])
    assert truth["block"] == config["simulation"]["block"]
    listed = [
        onset
        for trial in truth["participants"]["sub-001_ses-1"]["trials"]
        for onset in trial["stimulus_onsets_s"]
    ]
    np.testing.assert_allclose(rises / fs, listed, atol=0.5 / fs)


def test_impossible_sessions_and_blocks_are_errors_naming_their_key(quick_config):
    config = copy.deepcopy(quick_config)
    config["simulation"]["period_effects"] = [
        {"period": 2, "parameter": "a", "value": 0.1}
    ]
    with pytest.raises(ValueError, match="simulation.period_effects need each"):
        plan_participant(config, "sub-001", "placebo", "1")
    config["simulation"]["period_effects"] = []
    with pytest.raises(ValueError, match="period 2 without a session"):
        plan_participant(config, "sub-001", "placebo", None, 2)
    config["simulation"]["block"] = {
        "stimuli_per_block": 20,
        "stimulus_interval_s": 1.0,
        "pulse_s": 0.02,
    }
    with pytest.raises(ValueError, match="simulation.trial_onset_spacing_s"):
        plan_participant(config, "sub-001", "placebo")


def test_sheet_rows_give_the_simulators_arguments(quick_config):
    """A parallel-group sheet's rows have no session or period; a crossover sheet's
    sessions are text and periods integers, as the workflow gives them."""
    sheet = read_sample_sheet(PROJECT_ROOT / quick_config["participants"])
    assert sheet_recordings(sheet) == [
        (participant, group, None, None)
        for participant, group in zip(sheet["participant_id"], sheet["group"])
    ]
    crossover = pd.read_csv(
        PROJECT_ROOT / "config" / "examples" / "crossover" / "participants.tsv",
        sep="\t",
        dtype=str,
    )
    crossover["period"] = crossover["session"].astype(int)
    first = sheet_recording(crossover.iloc[0])
    assert first == {
        "participant_id": crossover["participant_id"][0],
        "group": crossover["group"][0],
        "session": crossover["session"][0],
        "period": int(crossover["session"][0]),
    }
    assert type(first["period"]) is int
