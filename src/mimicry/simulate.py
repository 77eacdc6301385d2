"""The simulated study: raw EDF+ recordings with a known ground truth.

Each participant's recording depends only on the global seed, the participant id and
the configuration, so the per-participant jobs are independent. Randomness comes in three
streams per participant: the *plan* (trial order, onsets, deviations, artifacts,
spontaneous bursts), which the ground truth lists, the *signal* (noise samples), which
only the recording holds, and the *level* (the slow fluctuation of the EMG level, see
`level_fluctuation`), which tests can draw again.

The signal looks like real facial EMG where artifact rules and models look: besides the
responses, the EMG level wanders (sd of the log baseline across a participant's trials
about 0.5, as in a real study), and short spontaneous bursts of heavy-tailed size come
and go at rest as in a response (physiology: the truth lists them apart from the rare,
far larger movement and blink artifacts). Recordings are synthesised at
simulation.sampling_rate_hz; simulation.export_rate_hz keeps every n-th sample, as
BIOPAC-style text exports at 100 Hz do (no anti-aliasing filter: EMG power above the
new Nyquist frequency folds back, and 50 Hz mains lands at Nyquist).

Participants differ as in real facial-EMG studies: each one's response type (mimics,
does not respond, or responds in reverse) scales the population asymptotes; their own
asymptote and rate deviations are Student-t (heavy tails); a few outlier participants
deviate several times more; each trial deviates again, a few trials far more.
"""

import json
import logging
import zlib
from dataclasses import asdict, dataclass

import numpy as np
from mimicry.asymptotic import asymptotic_curve

log = logging.getLogger(__name__)

# Shwedyk et al. (1977) surface-EMG spectrum: rises as f^2, peaks near 65 Hz, falls as f^-4.
EMG_SPECTRUM_CORNERS_HZ = (60.0, 120.0)
PHYSICAL_RANGE_UV = 4000.0
BASELINE_S = 1.0
RETURN_TIME_CONSTANT_S = 0.5
ONSET_JITTER_S = 1.0
# What a participant's response type multiplies the population asymptotes by.
RESPONSE_FACTORS = {"mimic": 1.0, "none": 0.0, "reverse": -1.0}


@dataclass(frozen=True)
class Artifact:
    muscles: tuple
    start_s: float  # relative to the trial's onset
    duration_s: float
    amplitude_factor: float


@dataclass(frozen=True)
class Burst:
    """A spontaneous burst: the EMG amplitude rises to peak_factor times its level and
    back, as a Hann window over duration_s."""

    start_s: float  # from the start of the recording
    duration_s: float
    peak_factor: float


@dataclass(frozen=True)
class Trial:
    index: int
    condition: str
    onset_s: float
    asymptote_deviation: dict  # muscle -> shift of a in this trial
    outlier: bool  # deviation drawn with simulation.outlier_trials.sd
    artifact: Artifact | None


@dataclass(frozen=True)
class ParticipantPlan:
    participant_id: str
    group: str
    flaw: str | None
    flat_muscle: str | None
    response_type: str  # one of RESPONSE_FACTORS
    outlier: bool  # deviations scaled by simulation.outlier_participants.scale
    baseline_amplitude_uv: dict  # muscle -> RMS at rest
    level_fluctuation_scale: dict  # muscle -> factor on the level's sds
    cell_parameters: dict  # muscle -> condition -> {a, b, c} incl. own deviation
    trials: tuple
    duration_s: int
    spontaneous_bursts: dict  # muscle -> tuple of Burst, in time order

    def to_truth(self):
        truth = asdict(self)
        for trial in truth["trials"]:
            if trial["artifact"] is not None:
                trial["artifact"]["muscles"] = list(trial["artifact"]["muscles"])
        # Columns, not one object per burst: a default participant has hundreds.
        truth["spontaneous_bursts"] = {
            muscle: {
                field: [burst[field] for burst in bursts]
                for field in ("start_s", "duration_s", "peak_factor")
            }
            for muscle, bursts in truth["spontaneous_bursts"].items()
        }
        return truth


def participant_streams(seed, participant_id):
    """Independent plan, signal and level generators for one participant."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(participant_id.encode())])
    return tuple(np.random.default_rng(child) for child in sequence.spawn(3))


def group_cell_parameters(simulation, study, group, response_factor=1.0):
    """Population a, b, c per muscle and condition for one group, its asymptotes
    times a response type's factor (1: mimicry), drug effects applied after it."""
    cells = {
        muscle: {
            condition: {
                **simulation["cells"][muscle][condition],
                "a": response_factor * simulation["cells"][muscle][condition]["a"],
            }
            for condition in study["conditions"]
        }
        for muscle in study["muscles"]
    }
    for effect in simulation["drug_effects"]:
        if effect["group"] != group:
            continue
        cell = cells[effect["muscle"]][effect["condition"]]
        if effect["parameter"] == "a":
            cell["a"] += effect["value"]
        else:
            cell["c"] *= float(np.exp(effect["value"]))
    return cells


def plan_participant(config, participant_id, group):
    """Draw everything the ground truth records about one participant."""
    simulation, study = config["simulation"], config["study"]
    muscles, conditions = study["muscles"], study["conditions"]
    rng, _, _ = participant_streams(config["seed"], participant_id)
    flawed = simulation["flawed_participants"]
    flaw = next((kind for kind, ids in flawed.items() if participant_id in ids), None)

    amplitude = simulation["baseline_amplitude_uv"]
    baseline = {
        muscle: float(amplitude["median"] * np.exp(amplitude["log_sd"] * rng.normal()))
        for muscle in muscles
    }
    response_type = _draw_response_type(rng, simulation["response_type_shares"])
    outliers = simulation["outlier_participants"]
    outlier = bool(rng.uniform() < outliers["share"])
    scale = outliers["scale"] if outlier else 1.0
    cells = group_cell_parameters(
        simulation, study, group, RESPONSE_FACTORS[response_type]
    )
    deviations = simulation["participant_deviation"]
    for muscle in muscles:
        for condition in conditions:
            cell = cells[muscle][condition]
            a_deviation, log_c_deviation = _heavy_tailed(rng, deviations["df"], size=2)
            cell["a"] = float(
                cell["a"] + scale * deviations["asymptote_sd"] * a_deviation
            )
            cell["c"] = float(
                cell["c"] * np.exp(scale * deviations["rate_log_sd"] * log_c_deviation)
            )

    order = rng.permutation(np.repeat(conditions, simulation["trials_per_condition"]))
    spacing = simulation["trial_onset_spacing_s"]
    jitter = rng.uniform(0.0, ONSET_JITTER_S, size=len(order))
    onsets = simulation["lead_in_s"] + spacing * np.arange(len(order)) + jitter
    artifact_share = (
        simulation["too_few_trials_artifact_share"]
        if flaw == "too_few_trials"
        else simulation["artifact_trial_share"]
    )
    outlier_trials = simulation["outlier_trials"]
    trials = []
    for index, (condition, onset) in enumerate(zip(order, onsets)):
        outlier_trial = bool(rng.uniform() < outlier_trials["share"])
        trial_sd = (
            outlier_trials["sd"] if outlier_trial else simulation["trial_asymptote_sd"]
        )
        deviation = rng.normal(0.0, trial_sd, size=len(muscles))
        artifact = None
        if rng.uniform() < artifact_share:
            artifact = _draw_artifact(rng, muscles, simulation)
        trials.append(
            Trial(
                index=index,
                condition=str(condition),
                onset_s=round(float(onset), 3),
                asymptote_deviation=dict(zip(muscles, map(float, deviation))),
                outlier=outlier_trial,
                artifact=artifact,
            )
        )
    duration_s = int(np.ceil(onsets[-1] + spacing))
    # Drawn after everything above, which therefore stays as it was without them.
    fluctuation = simulation["level_fluctuation"]
    level_scale = {
        muscle: float(np.exp(fluctuation["participant_log_sd"] * rng.normal()))
        for muscle in muscles
    }
    bursts = {
        muscle: _draw_spontaneous_bursts(
            rng, duration_s, simulation["spontaneous_bursts"]
        )
        for muscle in muscles
    }
    return ParticipantPlan(
        participant_id=participant_id,
        group=group,
        flaw=flaw,
        flat_muscle=muscles[-1] if flaw == "flat_channel" else None,
        response_type=response_type,
        outlier=outlier,
        baseline_amplitude_uv=baseline,
        level_fluctuation_scale=level_scale,
        cell_parameters=cells,
        trials=tuple(trials),
        duration_s=duration_s,
        spontaneous_bursts=bursts,
    )


def _draw_response_type(rng, shares):
    """ "mimic", or "none"/"reverse" with the configured probabilities."""
    draw, cumulative = rng.uniform(), 0.0
    for response_type in ("none", "reverse"):
        cumulative += shares[response_type]
        if draw < cumulative:
            return response_type
    return "mimic"


def _heavy_tailed(rng, df, size):
    """Student-t draws with df degrees of freedom scaled to unit sd (df > 2), or
    standard normal ones when df is None."""
    if df is None:
        return rng.standard_normal(size)
    return rng.standard_t(df, size=size) * np.sqrt((df - 2) / df)


def _draw_artifact(rng, muscles, simulation):
    """A movement or blink burst inside the trial's baseline-to-response window."""
    both = rng.uniform() < 0.5
    affected = tuple(muscles) if both else (muscles[rng.integers(len(muscles))],)
    duration = rng.uniform(0.2, 0.6)
    start = rng.uniform(-BASELINE_S, simulation["response_s"] - duration)
    factor = simulation["artifact_amplitude_factor"] * rng.uniform(0.6, 1.4)
    return Artifact(affected, float(start), float(duration), float(factor))


def _draw_spontaneous_bursts(rng, duration_s, settings):
    """A Poisson process of bursts over the recording, its rate varying between
    participants and muscles; each burst's excess over the level (peak_factor - 1)
    log-normal, so a few are several times larger than most, up to max_peak_factor
    (a larger event is a movement: the artifacts simulate those)."""
    rate = settings["rate_per_s"] * np.exp(
        settings["participant_rate_log_sd"] * rng.normal()
    )
    count = rng.poisson(rate * duration_s)
    starts = np.sort(rng.uniform(0.0, duration_s, size=count))
    durations = rng.uniform(*settings["duration_s"], size=count)
    excess = np.minimum(
        settings["excess_median"]
        * np.exp(settings["excess_log_sd"] * rng.standard_normal(count)),
        settings["max_peak_factor"] - 1,
    )
    # Rounded as the truth stores them, so the file follows the truth exactly.
    return tuple(
        Burst(round(float(start), 3), round(float(duration), 3), round(1 + float(e), 3))
        for start, duration, e in zip(starts, durations, excess)
    )


def level_fluctuation(config, plan, sampling_rate_hz):
    """Per muscle, the slow fluctuation of the log EMG level at each sample.

    The sum of Ornstein-Uhlenbeck processes (simulation.level_fluctuation.components)
    with the participant's scale (plan.level_fluctuation_scale) on their sds. Drawn
    from the participant's level stream alone, so the same plan and configuration give
    the same fluctuation.
    """
    _, _, rng = participant_streams(config["seed"], plan.participant_id)
    components = config["simulation"]["level_fluctuation"]["components"]
    n_samples = plan.duration_s * sampling_rate_hz
    levels = {}
    for muscle, scale in plan.level_fluctuation_scale.items():
        level = np.zeros(n_samples)
        for component in components:
            level += (
                scale
                * component["sd"]
                * _unit_ornstein_uhlenbeck(
                    rng, n_samples, sampling_rate_hz, component["time_constant_s"]
                )
            )
        levels[muscle] = level
    return levels


def _unit_ornstein_uhlenbeck(rng, n_samples, sampling_rate_hz, time_constant_s):
    """A stationary Ornstein-Uhlenbeck process of unit variance (in expectation), by
    random-phase FFT synthesis of its Lorentzian spectrum as `emg_noise` does: a loop
    as long as the recording, whose ends meet (a recording is many time constants
    long). Needs no SciPy, whose import would double a simulation job's time."""
    frequencies = np.fft.rfftfreq(n_samples, d=1.0 / sampling_rate_hz)
    power = 1.0 / (1.0 + np.square(2 * np.pi * frequencies * time_constant_s))
    coefficients = rng.standard_normal(len(frequencies)) + 1j * rng.standard_normal(
        len(frequencies)
    )
    process = np.fft.irfft(coefficients * np.sqrt(power), n_samples)
    # Each sample's variance: irfft keeps the real part of the constant term (and of
    # the Nyquist term when n_samples is even) and counts every other term twice.
    once = [0, -1] if n_samples % 2 == 0 else [0]
    variance = (4 * power.sum() - 3 * power[once].sum()) / n_samples**2
    return process / np.sqrt(variance)


def burst_log_envelope(bursts, n_samples, sampling_rate_hz):
    """Per-sample log amplitude that the spontaneous bursts add."""
    factor = np.ones(n_samples)
    for burst in bursts:
        start = int(round(burst.start_s * sampling_rate_hz))
        window = np.hanning(int(round(burst.duration_s * sampling_rate_hz)))
        window = window[: max(0, n_samples - start)]
        factor[start : start + len(window)] += (burst.peak_factor - 1.0) * window
    return np.log(factor)


def background_log_ratios(config, plan, bin_edges_s):
    """Per muscle, what the level fluctuation and the spontaneous bursts add to each
    trial's log(bin mean / baseline mean) beside the response (trials x bins): the log
    of their amplitude factor's mean over each bin (edges in s from onset) minus that
    over the baseline second. Added to the response curve's binned log ratio, it gives
    what the recording's rectified envelope holds, artifacts aside."""
    fs = config["simulation"]["sampling_rate_hz"]
    onsets = np.round(np.array([t.onset_s for t in plan.trials]) * fs).astype(int)
    edges = onsets[:, None] + np.round(np.asarray(bin_edges_s) * fs).astype(int)
    baseline = onsets - int(round(BASELINE_S * fs))
    ratios = {}
    for muscle, level in level_fluctuation(config, plan, fs).items():
        bursts = burst_log_envelope(plan.spontaneous_bursts[muscle], len(level), fs)
        prefix = np.concatenate([[0.0], np.cumsum(np.exp(level + bursts))])
        bin_means = np.diff(prefix[edges], axis=1) / np.diff(edges, axis=1)
        baseline_means = (prefix[onsets] - prefix[baseline]) / (onsets - baseline)
        ratios[muscle] = np.log(bin_means) - np.log(baseline_means)[:, None]
    return ratios


def log_envelope(plan, muscle, sampling_rate_hz, response_s):
    """Per-sample log amplitude relative to rest, following each trial's curve."""
    n_samples = plan.duration_s * sampling_rate_hz
    envelope = np.zeros(n_samples)
    response_t = np.arange(int(response_s * sampling_rate_hz)) / sampling_rate_hz
    return_t = np.arange(int(5 * RETURN_TIME_CONSTANT_S * sampling_rate_hz))
    return_shape = np.exp(-return_t / (RETURN_TIME_CONSTANT_S * sampling_rate_hz))
    for trial in plan.trials:
        cell = plan.cell_parameters[muscle][trial.condition]
        a = cell["a"] + trial.asymptote_deviation[muscle]
        curve = asymptotic_curve(response_t, a, cell["b"], cell["c"])
        start = int(round(trial.onset_s * sampling_rate_hz))
        envelope[start : start + len(curve)] = curve
        tail = start + len(curve)
        envelope[tail : tail + len(return_shape)] = curve[-1] * return_shape
    return envelope


def emg_power_spectrum(frequencies_hz):
    """Relative power of surface EMG at each frequency (Shwedyk model)."""
    low, high = EMG_SPECTRUM_CORNERS_HZ
    f2 = np.square(frequencies_hz)
    return high**4 * f2 / ((f2 + low**2) * np.square(f2 + high**2))


def emg_noise(rng, n_samples, sampling_rate_hz):
    """Unit-RMS Gaussian noise with the EMG spectrum, by random-phase FFT synthesis."""
    frequencies = np.fft.rfftfreq(n_samples, d=1.0 / sampling_rate_hz)
    coefficients = rng.standard_normal(len(frequencies)) + 1j * rng.standard_normal(
        len(frequencies)
    )
    noise = np.fft.irfft(
        coefficients * np.sqrt(emg_power_spectrum(frequencies)), n_samples
    )
    return noise / noise.std()


def synthesize(plan, config):
    """Two-channel recording in microvolts at simulation.sampling_rate_hz: EMG with its
    level fluctuation and spontaneous bursts, artifacts, mains hum and drift."""
    simulation, muscles = config["simulation"], config["study"]["muscles"]
    fs = simulation["sampling_rate_hz"]
    _, rng, _ = participant_streams(config["seed"], plan.participant_id)
    n_samples = plan.duration_s * fs
    t = np.arange(n_samples) / fs
    levels = level_fluctuation(config, plan, fs)
    channels = []
    for muscle in muscles:
        emg = emg_noise(rng, n_samples, fs)
        emg *= plan.baseline_amplitude_uv[muscle]
        emg *= np.exp(
            log_envelope(plan, muscle, fs, simulation["response_s"])
            + levels[muscle]
            + burst_log_envelope(plan.spontaneous_bursts[muscle], n_samples, fs)
        )
        _add_artifacts(emg, plan, muscle, levels[muscle], rng, fs)
        mains_phase = rng.uniform(0, 2 * np.pi, size=2)
        mains = simulation["mains_amplitude_uv"] * (
            np.sin(2 * np.pi * simulation["mains_hz"] * t + mains_phase[0])
            + np.sin(2 * np.pi * 3 * simulation["mains_hz"] * t + mains_phase[1]) / 3
        )
        drift_hz = rng.uniform(0.02, 0.3, size=3)
        drift_phase = rng.uniform(0, 2 * np.pi, size=3)
        drift = simulation["drift_amplitude_uv"] * np.sin(
            2 * np.pi * drift_hz[:, None] * t[None, :] + drift_phase[:, None]
        ).mean(axis=0)
        recording = emg + mains + drift
        if muscle == plan.flat_muscle:
            recording = np.zeros(n_samples)
        channels.append(np.clip(recording, -PHYSICAL_RANGE_UV, PHYSICAL_RANGE_UV))
    return np.vstack(channels)


def _add_artifacts(emg, plan, muscle, level, rng, fs):
    """Each artifact of the muscle, amplitude_factor times its resting amplitude at the
    time (the level fluctuation included, so that an artifact stands out as much
    whatever the level)."""
    for trial in plan.trials:
        artifact = trial.artifact
        if artifact is None or muscle not in artifact.muscles:
            continue
        start = int(round((trial.onset_s + artifact.start_s) * fs))
        n_samples = int(round(artifact.duration_s * fs))
        burst = emg_noise(rng, n_samples, fs) * np.hanning(n_samples)
        resting_uv = plan.baseline_amplitude_uv[muscle] * np.exp(
            level[start : start + n_samples]
        )
        emg[start : start + n_samples] += artifact.amplitude_factor * resting_uv * burst


def file_rate_hz(simulation):
    """Sampling rate of the written files: simulation.export_rate_hz, else the
    acquisition rate simulation.sampling_rate_hz."""
    return simulation["export_rate_hz"] or simulation["sampling_rate_hz"]


def export_rate_problem(simulation):
    """Why simulation.export_rate_hz cannot be made from the acquisition rate, or None."""
    if simulation["sampling_rate_hz"] % file_rate_hz(simulation):
        return (
            f"simulation.export_rate_hz {simulation['export_rate_hz']} must divide "
            f"simulation.sampling_rate_hz {simulation['sampling_rate_hz']}: the files "
            "keep every n-th sample of the acquisition"
        )
    return None


def export(data_uv, simulation):
    """The channels at the file rate: every n-th sample, no anti-aliasing filter (what
    BIOPAC-style exports at a lower rate do: their spectra are flat to Nyquist)."""
    problem = export_rate_problem(simulation)
    if problem:
        raise ValueError(problem)
    return data_uv[:, :: simulation["sampling_rate_hz"] // file_rate_hz(simulation)]


def write_edf(path, data_uv, plan, config):
    """EDF+ with one signal per muscle (uV) and one annotation per stimulus onset, from
    channels at the acquisition rate (as `synthesize` gives them) written at the file
    rate (`export`)."""
    import edfio

    fs = file_rate_hz(config["simulation"])
    data_uv = export(data_uv, config["simulation"])
    signals = [
        edfio.EdfSignal(
            channel,
            sampling_frequency=fs,
            label=config["channels"][muscle],
            transducer_type="AgAgCl electrode",
            physical_dimension="uV",
            physical_range=(-PHYSICAL_RANGE_UV, PHYSICAL_RANGE_UV),
        )
        for muscle, channel in zip(config["study"]["muscles"], data_uv)
    ]
    annotations = [
        edfio.EdfAnnotation(trial.onset_s, None, trial.condition)
        for trial in plan.trials
    ]
    edfio.Edf(
        signals,
        patient=edfio.Patient(code=plan.participant_id),
        annotations=annotations,
    ).write(path)


def simulate_participant(config, participant_id, group, path):
    """Plan, synthesize and write one participant's raw recording."""
    plan = plan_participant(config, participant_id, group)
    log.info(
        "%s (%s): %d trials, %d s, flaw=%s",
        participant_id,
        group,
        len(plan.trials),
        plan.duration_s,
        plan.flaw,
    )
    write_edf(path, synthesize(plan, config), plan, config)
    log.info("wrote %s", path)
    return plan


def study_truth(config, participants):
    """Ground truth of the whole study: population cells, drug effects, every plan."""
    simulation, study = config["simulation"], config["study"]
    return {
        "seed": config["seed"],
        "sampling_rate_hz": simulation["sampling_rate_hz"],
        "file_rate_hz": file_rate_hz(simulation),
        "study": study,
        "cells": simulation["cells"],
        "drug_effects": simulation["drug_effects"],
        "group_cells": {
            group: group_cell_parameters(simulation, study, group)
            for group in study["groups"]
        },
        "participants": {
            participant_id: plan_participant(config, participant_id, group).to_truth()
            for participant_id, group in participants
        },
    }


def write_truth(path, config, participants):
    with open(path, "w") as handle:
        json.dump(study_truth(config, participants), handle, indent=1)
