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

Sessions (a crossover study records each participant once per treatment): a recording
with a session draws what is the participant's own (response type, outlier status,
asymptote and rate deviations, baseline amplitude, level scale, burst rate) from the
participant's plan stream alone, so every session shares it, and what belongs to the
session (trial order, onsets, trial deviations, artifacts, bursts, a session deviation
of each asymptote, the signal and the level fluctuation) from streams of the
participant and session. Drug effects follow the session's treatment, period effects
its period. A recording without a session draws everything from the participant's
streams, in the order it always has, so a parallel-group study is as it was.

Block designs (simulation.block): each trial is a block of stimuli of one condition,
one short trigger pulse per stimulus; the response follows the block's onset.
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
# The stimulus channel of a block design: named so that MNE's EDF reader marks it as a
# stim channel; a pulse's value is the 1-based position of its condition in
# study.conditions.
TRIGGER_LABEL = "TRIGGER"


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
    # A recording of one session of the participant (None: the participant's only one).
    session: str | None = None
    period: int | None = None
    # muscle -> condition -> this session's shift of a (already in cell_parameters)
    session_asymptote_deviation: dict | None = None

    @property
    def recording_id(self):
        return recording_id(self.participant_id, self.session)

    def to_truth(self):
        truth = asdict(self)
        if self.session is None:
            for key in ("session", "period", "session_asymptote_deviation"):
                del truth[key]
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


def recording_id(participant_id, session=None):
    """The sample sheet's recording id: the participant's, with its session if any."""
    return participant_id if session is None else f"{participant_id}_ses-{session}"


def participant_streams(seed, participant_id):
    """Independent plan, signal and level generators for one participant."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(participant_id.encode())])
    return tuple(np.random.default_rng(child) for child in sequence.spawn(3))


def recording_streams(seed, participant_id, session=None):
    """Plan, signal and level generators of one recording: the participant's own
    without a session, else ones of that participant and session alone."""
    if session is None:
        return participant_streams(seed, participant_id)
    sequence = np.random.SeedSequence(
        [seed, zlib.crc32(participant_id.encode()), zlib.crc32(str(session).encode())]
    )
    return tuple(np.random.default_rng(child) for child in sequence.spawn(3))


def counterbalanced_sessions(participant_ids, groups):
    """(participant_id, group, session, period) of a counterbalanced crossover study:
    every participant has every group once, in sessions "1", "2", ... (period = session
    number); the k-th participant's order is the groups rotated by k, so with n
    participants a multiple of len(groups) every group is equally often in each
    period (with two groups: A-B, B-A, A-B, ...)."""
    return [
        (
            participant_id,
            groups[(index + period) % len(groups)],
            str(period + 1),
            period + 1,
        )
        for index, participant_id in enumerate(participant_ids)
        for period in range(len(groups))
    ]


def group_cell_parameters(simulation, study, group, response_factor=1.0, period=None):
    """Population a, b, c per muscle and condition for one group, its asymptotes
    times a response type's factor (1: mimicry), drug effects applied after it, then
    the period's effects (simulation.period_effects) when period is given."""
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
        if effect["group"] == group:
            _apply_effect(cells[effect["muscle"]][effect["condition"]], effect)
    if period is not None:
        for effect in simulation["period_effects"]:
            if effect["period"] != period:
                continue
            for muscle in _or_all(effect.get("muscle"), study["muscles"]):
                for condition in _or_all(effect.get("condition"), study["conditions"]):
                    _apply_effect(cells[muscle][condition], effect)
    return cells


def _or_all(name, names):
    return names if name is None else [name]


def _apply_effect(cell, effect):
    if effect["parameter"] == "a":
        cell["a"] += effect["value"]
    else:
        cell["c"] *= float(np.exp(effect["value"]))


def simulation_problem(simulation, study):
    """What in simulation.period_effects or simulation.block cannot be simulated, or
    None (the rest is checked by the config schema and mimicry.config.validation)."""
    for i, effect in enumerate(simulation["period_effects"]):
        for key, allowed in (
            ("muscle", study["muscles"]),
            ("condition", study["conditions"]),
        ):
            if effect.get(key) is not None and effect[key] not in allowed:
                return (
                    f"simulation.period_effects[{i}].{key}: '{effect[key]}' is not one "
                    f"of {allowed}"
                )
    block = simulation["block"]
    if block is None:
        return None
    if block["pulse_s"] >= block["stimulus_interval_s"]:
        return (
            f"simulation.block.pulse_s {block['pulse_s']:g} s must be shorter than "
            f"simulation.block.stimulus_interval_s {block['stimulus_interval_s']:g} s: "
            "each stimulus has its own pulse"
        )
    if 1 / file_rate_hz(simulation) > block["pulse_s"]:
        return (
            f"simulation.block.pulse_s {block['pulse_s']:g} s is shorter than one "
            f"sample of the files ({file_rate_hz(simulation)} Hz)"
        )
    window = BASELINE_S + block_duration_s(block) + ONSET_JITTER_S
    if simulation["trial_onset_spacing_s"] < window:
        return (
            f"simulation.trial_onset_spacing_s must be at least {window:g} s with "
            f"simulation.block (1 s baseline + a block of {block_duration_s(block):g} s "
            "+ 1 s jitter)"
        )
    return None


def block_duration_s(block):
    """From a block's first stimulus onset to the end of its last stimulus."""
    return block["stimuli_per_block"] * block["stimulus_interval_s"]


def stimulus_onsets_s(trial, block):
    """Onset (s) of each stimulus of a trial: its own, or each of its block's."""
    if block is None:
        return [trial.onset_s]
    return [
        round(trial.onset_s + k * block["stimulus_interval_s"], 3)
        for k in range(block["stimuli_per_block"])
    ]


def plan_participant(config, participant_id, group, session=None, period=None):
    """Draw everything the ground truth records about one recording: the
    participant's only one (session None), or its session `session` (group: that
    session's treatment; period: the session's rank in a crossover study, for
    simulation.period_effects, else None).

    `stable` draws what is the participant's own, `varying` what is the recording's:
    one generator without a session, so the draws keep today's order."""
    simulation, study = config["simulation"], config["study"]
    muscles, conditions = study["muscles"], study["conditions"]
    problem = simulation_problem(simulation, study)
    if problem:
        raise ValueError(problem)
    if session is None and period is not None:
        raise ValueError(
            f"{participant_id}: period {period} without a session: a period is the "
            "rank of a session among the participant's"
        )
    if period is None and simulation["period_effects"]:
        raise ValueError(
            f"{participant_id}: simulation.period_effects need each recording's period "
            "(a crossover study's sessions); this recording has none"
        )
    if session is not None:
        session = str(session)
    stable, _, _ = participant_streams(config["seed"], participant_id)
    varying = (
        stable
        if session is None
        else recording_streams(config["seed"], participant_id, session)[0]
    )
    # A participant's flaw is in every one of its sessions.
    flawed = simulation["flawed_participants"]
    flaw = next((kind for kind, ids in flawed.items() if participant_id in ids), None)

    amplitude = simulation["baseline_amplitude_uv"]
    baseline = {
        muscle: float(
            amplitude["median"] * np.exp(amplitude["log_sd"] * stable.normal())
        )
        for muscle in muscles
    }
    response_type = _draw_response_type(stable, simulation["response_type_shares"])
    outliers = simulation["outlier_participants"]
    outlier = bool(stable.uniform() < outliers["share"])
    scale = outliers["scale"] if outlier else 1.0
    cells = group_cell_parameters(
        simulation, study, group, RESPONSE_FACTORS[response_type], period
    )
    deviations = simulation["participant_deviation"]
    for muscle in muscles:
        for condition in conditions:
            cell = cells[muscle][condition]
            a_deviation, log_c_deviation = _heavy_tailed(
                stable, deviations["df"], size=2
            )
            cell["a"] = float(
                cell["a"] + scale * deviations["asymptote_sd"] * a_deviation
            )
            cell["c"] = float(
                cell["c"] * np.exp(scale * deviations["rate_log_sd"] * log_c_deviation)
            )
    session_deviation = None
    if session is not None:
        sd = simulation["session_deviation"]["asymptote_sd"]
        session_deviation = {
            muscle: {
                condition: float(sd * varying.normal()) for condition in conditions
            }
            for muscle in muscles
        }
        for muscle in muscles:
            for condition in conditions:
                cells[muscle][condition]["a"] += session_deviation[muscle][condition]

    rng = varying
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
        muscle: float(np.exp(fluctuation["participant_log_sd"] * stable.normal()))
        for muscle in muscles
    }
    bursts = {
        muscle: _draw_spontaneous_bursts(
            stable, varying, duration_s, simulation["spontaneous_bursts"]
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
        session=session,
        period=period,
        session_asymptote_deviation=session_deviation,
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


def _draw_spontaneous_bursts(stable, rng, duration_s, settings):
    """A Poisson process of bursts over the recording, its rate varying between
    participants and muscles (drawn from `stable`, the bursts from `rng`); each
    burst's excess over the level (peak_factor - 1) log-normal, so a few are several
    times larger than most, up to max_peak_factor (a larger event is a movement: the
    artifacts simulate those)."""
    rate = settings["rate_per_s"] * np.exp(
        settings["participant_rate_log_sd"] * stable.normal()
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
    from the recording's level stream alone, so the same plan and configuration give
    the same fluctuation.
    """
    _, _, rng = recording_streams(config["seed"], plan.participant_id, plan.session)
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
    _, rng, _ = recording_streams(config["seed"], plan.participant_id, plan.session)
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
    rate (`export`). A block design adds the trigger channel (TRIGGER_LABEL) with one
    pulse per stimulus, and its annotations last a pulse each."""
    import edfio

    simulation = config["simulation"]
    fs = file_rate_hz(simulation)
    data_uv = export(data_uv, simulation)
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
    block = simulation["block"]
    if block is None:
        annotations = [
            edfio.EdfAnnotation(trial.onset_s, None, trial.condition)
            for trial in plan.trials
        ]
    else:
        annotations = [
            edfio.EdfAnnotation(onset, block["pulse_s"], trial.condition)
            for trial in plan.trials
            for onset in stimulus_onsets_s(trial, block)
        ]
        # Physical range = digital range: the codes are stored, and read back, exactly.
        signals.append(
            edfio.EdfSignal(
                trigger_channel(plan, config, data_uv.shape[1], fs),
                sampling_frequency=fs,
                label=TRIGGER_LABEL,
                physical_range=(-32768, 32767),
                digital_range=(-32768, 32767),
            )
        )
    edfio.Edf(
        signals,
        patient=edfio.Patient(code=plan.participant_id),
        annotations=annotations,
    ).write(path)


def trigger_channel(plan, config, n_samples, fs):
    """A block design's trigger channel at the file rate: zero, and for each stimulus
    a pulse of simulation.block.pulse_s at its condition's code (1-based position in
    study.conditions)."""
    block = config["simulation"]["block"]
    codes = {c: i + 1 for i, c in enumerate(config["study"]["conditions"])}
    channel = np.zeros(n_samples)
    width = int(round(block["pulse_s"] * fs))
    for trial in plan.trials:
        for onset in stimulus_onsets_s(trial, block):
            start = int(round(onset * fs))
            channel[start : start + width] = codes[trial.condition]
    return channel


def simulate_participant(
    config, participant_id, group, path, session=None, period=None
):
    """Plan, synthesize and write one recording: the participant's only one, or its
    session `session` under treatment `group` in period `period` (see
    `plan_participant`)."""
    plan = plan_participant(config, participant_id, group, session, period)
    log.info(
        "%s (%s): %d trials, %d s, flaw=%s",
        plan.recording_id,
        group if session is None else f"{group}, period {period}",
        len(plan.trials),
        plan.duration_s,
        plan.flaw,
    )
    write_edf(path, synthesize(plan, config), plan, config)
    log.info("wrote %s", path)
    return plan


def sheet_recording(row):
    """What `simulate_participant` takes from a sample-sheet row (a mapping):
    participant_id, group, session (text; None where the sheet has none) and period
    (an integer; None outside a crossover study)."""
    session, period = row.get("session"), row.get("period")
    return {
        "participant_id": str(row["participant_id"]),
        "group": str(row["group"]),
        "session": None if _missing(session) else str(session),
        "period": None if _missing(period) else int(period),
    }


def sheet_recordings(sheet):
    """`sheet_recording` of every row of a sample sheet (a DataFrame), in its order,
    as the tuples `study_truth` takes."""
    return [tuple(sheet_recording(row).values()) for _, row in sheet.iterrows()]


def _missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def recordings_of(participants):
    """(participant_id, group, session, period) of each item of participants:
    (participant_id, group) pairs, or with session and period."""
    recordings = []
    for item in participants:
        participant_id, group, *rest = item
        session, period = rest if rest else (None, None)
        recordings.append((participant_id, group, session, period))
    return recordings


def study_truth(config, participants):
    """Ground truth of the whole study: population cells, drug effects, every plan.

    participants: (participant_id, group) per participant, or (participant_id,
    treatment, session, period) per recording; the plans are keyed by recording id.
    With sessions the truth adds the period effects, the session deviation's setting
    and each recording's sequence (its participant's treatments by period); with
    simulation.block, the block's setting and each trial's stimulus onsets.
    """
    simulation, study = config["simulation"], config["study"]
    recordings = recordings_of(participants)
    with_sessions = any(session is not None for _, _, session, _ in recordings)
    truth = {
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
    }
    if with_sessions:
        truth["period_effects"] = simulation["period_effects"]
        truth["session_deviation"] = simulation["session_deviation"]
    if simulation["block"] is not None:
        truth["block"] = simulation["block"]
    sequences = treatment_sequences(recordings) if with_sessions else {}
    plans = {}
    for participant_id, group, session, period in recordings:
        plan = plan_participant(config, participant_id, group, session, period)
        if plan.recording_id in plans:
            raise ValueError(f"recording {plan.recording_id} is listed twice")
        plans[plan.recording_id] = plan.to_truth()
        if session is not None:
            plans[plan.recording_id]["sequence"] = sequences[participant_id]
        if simulation["block"] is not None:
            for trial, listed in zip(plan.trials, plans[plan.recording_id]["trials"]):
                listed["stimulus_onsets_s"] = stimulus_onsets_s(
                    trial, simulation["block"]
                )
    truth["participants"] = plans
    return truth


def treatment_sequences(recordings):
    """participant -> its treatments in period order joined with "-", from
    (participant_id, group, session, period) recordings."""
    by_participant = {}
    for participant_id, group, _, period in recordings:
        by_participant.setdefault(participant_id, []).append((period, group))
    return {
        participant_id: "-".join(group for _, group in sorted(periods))
        for participant_id, periods in by_participant.items()
    }


def write_truth(path, config, participants):
    with open(path, "w") as handle:
        json.dump(study_truth(config, participants), handle, indent=1)
