"""Damaged text exports in real Snakemake runs: each stops its own participant with a
message naming the line, the others finish; dropped trigger glitches and over-long
pulses reach qc.tsv, and a recording whose trigger sits high throughout is excluded
with its reason while the others are aggregated.

The exports are CSV files written here: time, two raw EMG columns (uV) and one
level-coded trigger column (1 V AngryToHappy, 2 V HappyToAngry), at 500 Hz.
"""

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers.devtools import run_snakemake

pytestmark = pytest.mark.workflow

FS = 500
CONDITIONS = ["AngryToHappy", "HappyToAngry"]
LEVELS = {"1.0": "AngryToHappy", "2.0": "HappyToAngry"}
TRIALS_PER_CONDITION = 4
SPACING_S = 8.0
LEAD_IN_S = 2.0
PULSE_S = 0.05
GLITCH_TIMES_S = (5.0, 13.0, 21.0)
# An over-long pulse between two stimuli (lenient study: trigger_max_pulse_s 2).
LONG_PULSE_S = (4.0, 3.0)


def synthesize(seed):
    """Columns (time, ZM, CS, trigger) of one participant's export."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(CONDITIONS, TRIALS_PER_CONDITION))
    onsets = np.round((LEAD_IN_S + SPACING_S * np.arange(len(order))) * FS).astype(int)
    n = onsets[-1] + int(SPACING_S * FS)
    trigger = np.zeros(n)
    heights = {c: float(level) for level, c in LEVELS.items()}
    for onset, condition in zip(onsets, order):
        trigger[onset : onset + int(PULSE_S * FS)] = heights[condition]
    zm, cs = (np.round(5.0 * rng.standard_normal(n), 3) for _ in range(2))
    return {"time": np.arange(n) / FS, "zm": zm, "cs": cs, "trigger": trigger}


def export_lines(columns):
    lines = ["time,zm,cs,trigger"]
    for t, zm, cs, trigger in zip(*columns.values()):
        lines.append(f"{t:.4f},{zm:.3f},{cs:.3f},{trigger:g}")
    return lines


def write_export(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def with_glitches(columns):
    """Three 12 V pulses of a stimulus's width between the stimuli."""
    trigger = columns["trigger"].copy()
    for time_s in GLITCH_TIMES_S:
        start = int(time_s * FS)
        trigger[start : start + int(PULSE_S * FS)] = 12.0
    return {**columns, "trigger": trigger}


def study_config(sheet, **recording):
    return {
        "participants": sheet,
        "study": {
            "groups": ["placebo", "drug"],
            "reference_group": "placebo",
            "conditions": CONDITIONS,
            "muscles": ["ZM", "CS"],
        },
        "channels": {"ZM": "zm", "CS": "cs"},
        "source": {"kind": "local", "local_dir": "lab"},
        "recording": {
            "format": "csv",
            "triggers": {"trigger": LEVELS},
            "trigger_threshold": 0.5,
            "text": {"time_column": "time"},
            **recording,
        },
        # White noise has no artifacts: every trial is kept.
        "preprocess": {
            "band_hz": [20.0, 200.0],
            "mains_hz": None,
            "rejection": {"rules": []},
        },
    }


def write_study(workdir, name, participants, **recording):
    sheet = pd.DataFrame(
        {
            "participant_id": participants,
            "group": ["placebo", "drug"] * (len(participants) // 2),
        }
    )
    sheet.to_csv(workdir / f"{name}.tsv", sep="\t", index=False)
    config = study_config(f"{name}.tsv", **recording)
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return ("--configfile", f"{name}.yaml")


def preprocess_log(workdir, participant):
    return (workdir / "logs" / "preprocess" / f"{participant}.log").read_text()


def test_damaged_exports_stop_their_participant_and_glitches_can_be_dropped(
    workflow_copy,
):
    lab = workflow_copy / "lab"
    good = export_lines(synthesize(1))
    write_export(lab / "P01.csv", good)
    with_inf = export_lines(synthesize(2))
    time, _, cs, trigger = with_inf[1001].split(",")
    with_inf[1001] = ",".join([time, "inf", cs, trigger])
    write_export(lab / "P02.csv", with_inf)
    # 10 s of rows missing after line 3002 (time 6.0 s).
    with_gap = export_lines(synthesize(3))
    write_export(lab / "P03.csv", with_gap[:3002] + with_gap[3002 + 10 * FS :])
    write_export(lab / "P04.csv", export_lines(with_glitches(synthesize(4))))
    # A decimal comma in one value makes one field too many.
    shifted = export_lines(synthesize(5))
    shifted[2001] = shifted[2001].replace(".", ",", 2)
    write_export(lab / "P05.csv", shifted)
    # Time stamps alternately 0.6 of a sample early: jitter.
    jittered = synthesize(7)
    jittered["time"] = jittered["time"] - 0.6 / FS * (
        np.arange(len(jittered["time"])) % 2
    )
    write_export(lab / "P07.csv", export_lines(jittered))
    # Time in milliseconds where seconds are configured.
    in_ms = synthesize(8)
    write_export(lab / "P08.csv", export_lines({**in_ms, "time": in_ms["time"] * 1000}))
    participants = ["P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08"]
    write_export(lab / "P06.csv", export_lines(synthesize(6)))
    args = write_study(workflow_copy, "strict", participants)
    tables = [f"results/preprocessed/{p}.parquet" for p in participants]

    result = run_snakemake(
        workflow_copy, "--cores", "2", "--keep-going", *tables, *args, check=False
    )

    assert result.returncode != 0
    for participant in ("P01", "P06"):
        assert (workflow_copy / f"results/preprocessed/{participant}.parquet").exists()
    expected = {
        "P02": r"line 1002, column 2 \('zm'\): 'inf' is not a finite number",
        "P03": r"column 1 \('time'\), the time column \(recording.text.time_column\), "
        r"jumps from 6.0 to 16.002 at line 3003: a gap of 10.002 s",
        "P04": r"a pulse on column 4 \('trigger'\) at 5.000 s \(line 2502\) has height "
        r"12, more than 0.25 from every configured level",
        "P05": r"line 2002 has 6 fields, but the first data line \(2\) has 4",
        "P07": r"jumps from 0.0 to 0.0008 at line 3: a step of 0.0008 s where the "
        r"samples are 0.002 s apart",
        "P08": r"the time column implies 0.5 Hz, too slow for EMG .* set "
        r"recording.text.time_unit: ms",
    }
    for participant, message in expected.items():
        log = preprocess_log(workflow_copy, participant)
        assert f"{participant}: lab/{participant}.csv" in log, log[-2000:]
        assert pd.Series([log]).str.contains(message).all(), log[-2000:]
        assert not (
            workflow_copy / f"results/preprocessed/{participant}.parquet"
        ).exists()

    # P09's trigger sits at a stimulus level throughout; P10 has an over-long pulse.
    high = synthesize(9)
    write_export(
        lab / "P09.csv", export_lines({**high, "trigger": high["trigger"] * 0 + 2})
    )
    long_pulse = synthesize(10)
    start, length = (round(s * FS) for s in LONG_PULSE_S)
    long_pulse["trigger"][start : start + length] = 1.0
    write_export(lab / "P10.csv", export_lines(long_pulse))
    args = write_study(
        workflow_copy,
        "lenient",
        ["P01", "P04", "P09", "P10"],
        trigger_glitches="drop",
        trigger_max_pulse_s=2.0,
    )
    run_snakemake(
        workflow_copy,
        "--cores",
        "2",
        "results/aggregate/qc.tsv",
        # The QC figures draw the excluded recording without trials.
        "results/qc/P09.png",
        "results/qc/group.png",
        *args,
    )
    qc = pd.read_csv(workflow_copy / "results/aggregate/qc.tsv", sep="\t")
    dropped = qc[qc["kind"] == "trigger_pulse_dropped"]
    assert dropped["participant"].tolist() == ["P04"] * 3 + ["P10"]
    assert [reason.split(" s ")[0] for reason in dropped["reason"]] == [
        f"trigger at {t:g}" for t in (*GLITCH_TIMES_S, LONG_PULSE_S[0])
    ]
    assert (
        dropped["reason"]
        .iloc[-1]
        .endswith(
            f"lasts {LONG_PULSE_S[1]:.3f} s, longer than recording.trigger_max_pulse_s "
            "2 s: not a stimulus"
        )
    )
    assert "P04: trigger pulse dropped" in preprocess_log(workflow_copy, "P04")
    excluded = qc[qc["kind"] == "participant_excluded"]
    reason = (
        "no_events:lab/P09.csv no stimulus events found (column 4 ('trigger') "
        "(recording.triggers.trigger) never rises through recording.trigger_threshold "
        "0.5 (its values span 2 to 2)) (recording.without_events: exclude)"
    )
    assert excluded[["participant", "reason"]].values.tolist() == [["P09", reason]]
    assert f"P09: excluded: {reason}" in preprocess_log(workflow_copy, "P09")
    cells = pd.read_parquet(workflow_copy / "results/aggregate/cells.parquet")
    assert set(cells["participant"]) == {"P01", "P04", "P10"}
    assert set(cells["n_trials"]) == {TRIALS_PER_CONDITION}
