"""The artifact rules' noise limits: calibrated on simulated noise, checked on fresh
noise at several rates, cached across jobs; and the default rules on a real study."""

import copy
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from mimicry.io.recording_types import Recording
from mimicry.preprocessing.noise_limits import (
    exceeded_at_most,
    minimum_trials,
    noise_limits,
)
from mimicry.preprocessing.preprocess import (
    preprocess_participant,
    preprocess_recording,
)

# Three of benchmarks/false_alarms.py's points: the real study's rate and band, a
# middle rate and the default's.
RATE_POINTS = [(100, [20, 45], None), (250, [20, 100], 50.0), (1000, [20, 450], 50.0)]
CHECK_TRIALS = 1200
SPACING_S = 10.0


def noise_recording(fs, n_trials, seed):
    rng = np.random.default_rng(seed)
    spacing = int(SPACING_S * fs)
    onsets = spacing + spacing * np.arange(n_trials)
    return Recording(
        participant="noise",
        path="<noise>",
        sampling_rate_hz=fs,
        signals_uv={
            m: 10 * rng.standard_normal((n_trials + 2) * spacing) for m in "AB"
        },
        onset_samples=onsets,
        conditions=("X",) * n_trials,
    )


def rule_alone(options, rule, ratio):
    options = copy.deepcopy(options)
    options["rejection"].update(
        rules=[rule], transient_ratio=ratio, baseline_ratio=ratio
    )
    return options


@pytest.mark.parametrize("fs, band, mains", RATE_POINTS)
def test_each_rule_rejects_noise_at_most_at_the_configured_rate(
    default_config, fs, band, mains
):
    """With the configured ratios at 1 the noise limit alone decides; on noise the
    calibration never saw, each rule's rejection rate is at most false_alarm_rate
    within its 95% interval."""
    options = default_config["preprocess"] | {"band_hz": band, "mains_hz": mains}
    target = options["rejection"]["false_alarm_rate"]
    recording = noise_recording(fs, CHECK_TRIALS, seed=12345)
    for rule in ("transient", "baseline"):
        _, qc = preprocess_recording(
            recording, ["X"], rule_alone(options, rule, 1.0001)
        )
        rejected = len(qc["rejected_trials"])
        interval = binomtest(rejected, 2 * CHECK_TRIALS).proportion_ci(0.95)
        print(fs, band, rule, rejected, interval)
        assert interval.low <= target, (fs, band, rule, rejected)


def test_a_fixed_ratio_of_three_rejects_low_rate_noise_far_more_often(default_config):
    """What the noise limit prevents: at 100 Hz and 20-45 Hz the transient rule with a
    fixed ratio of 3 (the earlier default) and no noise limit rejects noise far beyond
    the target."""
    options = default_config["preprocess"] | {"band_hz": [20, 45], "mains_hz": None}
    options = rule_alone(options, "transient", 3.0)
    options["rejection"]["false_alarm_rate"] = 0.2
    limits = noise_limits(100, options)
    # At a 20% rate the noise limits lie inside ratio 3, so the ratio decides.
    assert np.exp(limits["transient"]["upper"]) < 3
    recording = noise_recording(100, 400, seed=7)
    _, qc = preprocess_recording(recording, ["X"], options)
    rejected = len(qc["rejected_trials"]) / 800
    assert rejected > 5 * default_config["preprocess"]["rejection"]["false_alarm_rate"]


def test_limits_widen_as_the_band_narrows_and_the_rate_falls(default_config):
    options = default_config["preprocess"]
    wide = noise_limits(1000, options)["transient"]
    narrow = noise_limits(100, options | {"band_hz": [20, 45], "mains_hz": None})
    narrower = noise_limits(100, options | {"band_hz": [20, 40], "mains_hz": None})
    assert wide["upper"] < narrow["transient"]["upper"] < narrower["transient"]["upper"]
    assert wide["lower"] > narrow["transient"]["lower"] > narrower["transient"]["lower"]


def test_limits_are_cached_on_disk_once_per_setting(default_config, tmp_path):
    """Two processes at once, one file; a changed setting, a second file; the cached
    limits equal the ones computed in this process."""
    options = default_config["preprocess"] | {"band_hz": [20, 45], "mains_hz": None}
    script = (
        "import json, sys\n"
        "from mimicry.preprocessing.noise_limits import noise_limits\n"
        "options = json.loads(sys.argv[1])\n"
        "print(json.dumps(noise_limits(100, options, sys.argv[2])))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(options), str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [json.loads(process.communicate()[0]) for process in processes]
    assert results[0] == results[1] == noise_limits(100, options)
    assert len(list(tmp_path.glob("*.json"))) == 1
    assert not list(tmp_path.glob("*.partial"))
    changed = copy.deepcopy(options)
    changed["rejection"]["false_alarm_rate"] = 0.02
    assert noise_limits(100, changed, tmp_path) != results[0]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_the_order_statistic_bounds_the_rate_with_95_percent_confidence():
    """On uniform draws the bound's true exceedance probability is 1 - bound: it is
    at most p in at least 95% of repetitions (within binomial noise)."""
    rng = np.random.default_rng(3)
    p, n, repetitions = 0.005, 2000, 400
    bounds = np.array(
        [exceeded_at_most(rng.uniform(size=n), p) for _ in range(repetitions)]
    )
    too_low = np.count_nonzero(1 - bounds > p)
    assert binomtest(too_low, repetitions, 0.05, alternative="greater").pvalue > 0.01
    with pytest.raises(ValueError, match="calibration_trials.*at least"):
        exceeded_at_most(rng.uniform(size=minimum_trials(p) - 1), p)


def test_default_rules_keep_the_real_study(fmov_config, fmov_study):
    """On the real study (37 participants, 100 Hz, 4 trials per condition, no trial
    rejected by its authors) the defaults reject at most 5% of trial x muscle pairs,
    exclude at most 2 participants and move Happy - Angry by at most 0.03."""
    settings = {key: fmov_config[key] for key in ("study", "channels", "recording")}
    sheet = pd.read_csv(fmov_study / "participants.csv", dtype=str)
    results = {}
    for name, rules in (("defaults", None), ("none", [])):
        options = copy.deepcopy(fmov_config["preprocess"])
        if rules is not None:
            options["rejection"]["rules"] = rules
        rejected = pairs = 0
        excluded, contrasts = [], []
        for participant in sheet["participant_id"]:
            path = fmov_study / "FMOV" / f"{participant}_FMOV_preprocessed.txt"
            table, qc = preprocess_participant(
                path, participant, settings | {"preprocess": options}
            )
            trials = table.to_pandas()
            first_bin = trials[trials["bin"] == 0]
            pairs += len(first_bin)
            rejected += int(first_bin["rejected"].sum())
            if qc["excluded"]:
                excluded.append(participant)
                continue
            kept = trials[~trials["rejected"]]
            means = kept.groupby(["muscle", "condition"])["value"].mean()
            contrasts.append(
                {m: means[m, "Happy"] - means[m, "Angry"] for m in ("ZM", "CS")}
            )
        results[name] = (rejected, pairs, excluded, pd.DataFrame(contrasts).mean())
        print(name, results[name])
    rejected, pairs, excluded, contrast = results["defaults"]
    assert rejected <= 0.05 * pairs
    assert len(excluded) <= 2
    assert results["none"][:3] == (0, pairs, [])
    assert (contrast - results["none"][3]).abs().max() <= 0.03
