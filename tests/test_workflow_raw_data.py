"""Real Snakemake runs from raw files to the aggregated cells: reruns, bad input, downloads."""

import dataclasses
import hashlib
import json
import os
import zipfile

import pandas as pd
import pytest
import yaml
from helpers.http_server import Route, ScriptedHTTPServer

from helpers.devtools import job_counts, run_snakemake
from mimicry.simulate import plan_participant, synthesize, write_edf

pytestmark = pytest.mark.workflow

CELLS = "results/aggregate/cells.parquet"
QUICK = ("--configfile", "config/quick.yaml")
FAST_DOWNLOADS = {"download": {"attempts": 4, "backoff_s": 0.01, "timeout_s": 5.0}}


def write_recording(path, config, participant, group="placebo", edit_plan=None):
    """A simulated EDF+, optionally with its plan (events) edited before writing."""
    plan = plan_participant(config, participant, group)
    data = synthesize(plan, config)
    if edit_plan is not None:
        plan = edit_plan(plan)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_edf(path, data, plan, config)
    return path


def with_conditions(plan, relabel):
    trials = tuple(dataclasses.replace(t, condition=relabel(t)) for t in plan.trials)
    return dataclasses.replace(plan, trials=trials)


def write_config(workdir, name, sheet_rows, **sections):
    """A config override and its sample sheet inside the workflow copy."""
    columns = list(sheet_rows[0])
    lines = ["\t".join(columns)] + [
        "\t".join(str(row[c]) for c in columns) for row in sheet_rows
    ]
    (workdir / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    overrides = {"participants": f"{name}.tsv", **sections}
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(overrides))
    return ("--configfile", f"{name}.yaml")


def log_text(workdir, rule, participant):
    matches = list((workdir / "logs" / rule).glob(f"{participant}*.log"))
    assert matches, f"no {rule} log for {participant}"
    return matches[0].read_text()


def test_quick_study_aggregates_and_a_changed_file_reruns_only_its_participant(
    workflow_copy, quick_config
):
    # Kept, so that the test can change one (they are temporary by default).
    keep = (*QUICK, "--config", "simulation={keep_raw: true}")
    run_snakemake(workflow_copy, "--cores", "2", CELLS, *keep)
    cells = pd.read_parquet(workflow_copy / CELLS)
    qc = pd.read_csv(workflow_copy / "results/aggregate/qc.tsv", sep="\t")
    excluded = set(qc.loc[qc["kind"] == "participant_excluded", "participant"])
    assert excluded == {"sub-011", "sub-012"}
    assert cells["participant"].nunique() == 10
    assert not cells["participant"].isin(excluded).any()

    again = run_snakemake(workflow_copy, "--cores", "2", CELLS, "-n", *keep)
    assert job_counts(again.stdout) == {}, again.stdout

    # Content decides (mimicry.io.raw_content): a touch alone changes nothing, new
    # content (here: the recording of another session) re-runs what depends on it.
    raw = workflow_copy / "resources/raw/sub-003.edf"
    os.utime(raw)
    touched = run_snakemake(workflow_copy, "--cores", "2", CELLS, "-n", *keep)
    assert job_counts(touched.stdout) == {}, touched.stdout
    write_recording(raw, {**quick_config, "seed": 1}, "sub-003")
    changed = run_snakemake(workflow_copy, "--cores", "2", CELLS, "-n", *keep)
    # A simulated file is no ancient input: its stamp job re-runs too (same participant).
    assert job_counts(changed.stdout) == {
        "aggregate": 1,
        "preprocess": 1,
        "raw_content": 1,
    }
    assert "results/preprocessed/sub-003.parquet" in changed.stdout


def test_bad_recordings_fail_by_name_and_the_others_finish(workflow_copy, quick_config):
    raw = workflow_copy / "bad-raw"
    config = quick_config
    write_recording(raw / "sub-001.edf", config, "sub-001")
    truncated = write_recording(raw / "sub-002.edf", config, "sub-002")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    renamed = {**config, "channels": {"ZM": "Zyg", "CS": "EMG_CS"}}
    write_recording(raw / "sub-003.edf", renamed, "sub-003")
    write_recording(
        raw / "sub-004.edf",
        config,
        "sub-004",
        edit_plan=lambda p: with_conditions(
            p, lambda t: "Neutral" if t.index % 5 == 0 else t.condition
        ),
    )
    write_recording(
        raw / "sub-005.edf",
        config,
        "sub-005",
        edit_plan=lambda p: dataclasses.replace(p, trials=()),
    )
    longer = write_recording(raw / "sub-006.edf", config, "sub-006")
    longer.write_bytes(longer.read_bytes() + b"\0" * 4096)
    # Half the record duration in the header: the annotations lie after the data.
    halved = bytearray(
        write_recording(raw / "sub-007.edf", config, "sub-007").read_bytes()
    )
    duration = float(halved[244:252].decode())
    halved[244:252] = f"{duration / 2:<8g}".encode()
    (raw / "sub-007.edf").write_bytes(bytes(halved))
    rows = [{"participant_id": f"sub-00{i}", "group": "placebo"} for i in range(1, 8)]
    local = {"source": {"kind": "local", "local_dir": "bad-raw"}}
    args = write_config(workflow_copy, "bad", rows, **local)

    result = run_snakemake(
        workflow_copy, "--cores", "2", "--keep-going", CELLS, *args, check=False
    )

    assert result.returncode != 0
    assert (workflow_copy / "results/preprocessed/sub-001.parquet").exists()
    expected = {
        "sub-002": "truncated",
        "sub-003": "Zyg",
        "sub-004": "Neutral",
        "sub-006": "is longer than its header says",
        "sub-007": "so the header's record duration or record count is probably wrong",
    }
    for participant, message in expected.items():
        log = log_text(workflow_copy, "preprocess", participant)
        assert participant in log and f"{participant}.edf" in log, log[-2000:]
        assert message in log, log[-2000:]
        assert not (
            workflow_copy / f"results/preprocessed/{participant}.parquet"
        ).exists()
    # Without events (recording.without_events: exclude) sub-005 is excluded, not failed.
    qc = json.loads((workflow_copy / "results/qc/sub-005.json").read_text())
    assert qc["excluded"] and qc["n_trials"] == 0
    (reason,) = qc["exclusion_reasons"]
    assert reason.startswith("no_events:") and (
        "sub-005.edf no stimulus events found" in reason
    )


def test_settings_the_recordings_cannot_honour_stop_before_any_job(
    workflow_copy, quick_config
):
    raw = workflow_copy / "slow-raw"
    write_recording(raw / "sub-001.edf", quick_config, "sub-001")
    slow = {
        **quick_config,
        "simulation": {**quick_config["simulation"], "sampling_rate_hz": 250},
    }
    write_recording(raw / "sub-002.edf", slow, "sub-002")
    rows = [{"participant_id": p, "group": "placebo"} for p in ("sub-001", "sub-002")]
    local = {"source": {"kind": "local", "local_dir": "slow-raw"}}
    args = write_config(workflow_copy, "slow", rows, **local)
    failed = run_snakemake(workflow_copy, "--cores", "2", CELLS, *args, check=False)
    assert failed.returncode != 0
    assert (
        "preprocess.band_hz [20.0, 450.0]: the upper edge 450 Hz is at or above the "
        "Nyquist frequency (half the sampling rate) of sub-002 (250 Hz, "
        "slow-raw/sub-002.edf's header)"
    ) in failed.stdout + failed.stderr, failed.stderr[-3000:]
    assert not (workflow_copy / "results").exists()

    # A field too many on one line of the sample sheet: no column is shifted.
    sheet = workflow_copy / "slow.tsv"
    lines = sheet.read_text().splitlines()
    sheet.write_text("\n".join([*lines[:2], lines[2] + "\tnote", ""]))
    failed = run_snakemake(workflow_copy, "-n", *args, check=False)
    assert failed.returncode != 0
    assert (
        "sample sheet slow.tsv, line 3: 3 fields, but the header (line 1) has 2"
    ) in failed.stdout + failed.stderr, failed.stdout[-3000:]


def test_missing_raw_file_is_an_error_by_default_or_recorded_when_skipped(
    workflow_copy, quick_config
):
    raw = workflow_copy / "own-raw"
    write_recording(raw / "sub-001.edf", quick_config, "sub-001")
    # An extension in upper case is the same format.
    write_recording(raw / "sub-002.EDF", quick_config, "sub-002")
    rows = [
        {"participant_id": p, "group": "placebo"}
        for p in ("sub-001", "sub-002", "sub-003", "sub-004")
    ]
    local = {"kind": "local", "local_dir": "own-raw"}
    args = write_config(workflow_copy, "strict", rows, source=local)
    failed = run_snakemake(workflow_copy, "--cores", "2", CELLS, *args, check=False)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    assert "2 of 4 raw files are missing" in said, said[-3000:]
    assert "own-raw/sub-003.edf, own-raw/sub-004.edf" in said
    assert "set source.missing_raw: skip" in said and "sub-002" not in said
    assert not (workflow_copy / "results").exists()

    misspelled = {**local, "local_dir": "own-rwa", "missing_raw": "skip"}
    args = write_config(workflow_copy, "misspelled", rows, source=misspelled)
    failed = run_snakemake(workflow_copy, "-n", *args, check=False)
    assert failed.returncode != 0
    assert "source.local_dir 'own-rwa' is not a directory" in failed.stdout

    args = write_config(
        workflow_copy, "lenient", rows, source={**local, "missing_raw": "skip"}
    )
    done = run_snakemake(workflow_copy, "--cores", "2", CELLS, *args)
    assert (
        "source.missing_raw: skip: 2 of 4 recordings have no raw file and are left "
        "out (recorded in qc.tsv): sub-003, sub-004"
    ) in done.stdout + done.stderr
    qc = pd.read_csv(workflow_copy / "results/aggregate/qc.tsv", sep="\t")
    missing = qc[qc["kind"] == "raw_missing"]
    assert missing["participant"].tolist() == ["sub-003", "sub-004"]
    cells = pd.read_parquet(workflow_copy / CELLS)
    assert sorted(cells["participant"].unique()) == ["sub-001", "sub-002"]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def test_downloads_retry_resume_and_fail_by_name(workflow_copy, quick_config, tmp_path):
    files = {
        p: write_recording(tmp_path / f"{p}.edf", quick_config, p).read_bytes()
        for p in ("sub-001", "sub-002", "sub-003", "sub-004")
    }
    with ScriptedHTTPServer() as server:
        server.routes["/sub-001.edf"] = Route(files["sub-001"])
        server.routes["/sub-002.edf"] = Route(files["sub-002"], failures=2)
        server.routes["/sub-003.edf"] = Route(files["sub-003"], cuts=1)
        server.routes["/sub-004.edf"] = Route(files["sub-004"])
        rows = [
            {"participant_id": p, "group": "placebo", "url": server.url(f"/{p}.edf")}
            | {"sha256": sha256(files[p])}
            for p in ("sub-001", "sub-002", "sub-003", "sub-004")
        ]
        wrong_hash = sha256(b"something else")
        rows[3]["sha256"] = wrong_hash
        rows.append(
            {
                "participant_id": "sub-005",
                "group": "placebo",
                "url": server.url("/sub-005.edf"),
                "sha256": wrong_hash,
            }
        )
        args = write_config(
            workflow_copy, "remote", rows, source={"kind": "download"}, **FAST_DOWNLOADS
        )
        result = run_snakemake(
            workflow_copy, "--cores", "2", "--keep-going", CELLS, *args, check=False
        )
        assert len(server.requests_for("/sub-002.edf")) == 3
        ranges = [r.range for r in server.requests_for("/sub-003.edf")]
        assert ranges[0] is None and ranges[1].startswith("bytes=")

    assert result.returncode != 0
    for participant in ("sub-001", "sub-002", "sub-003"):
        raw = workflow_copy / f"resources/raw/{participant}.edf"
        assert raw.read_bytes() == files[participant]
        assert (workflow_copy / f"results/preprocessed/{participant}.parquet").exists()
    mismatch = log_text(workflow_copy, "download_raw", "sub-004")
    assert "sub-004" in mismatch and sha256(files["sub-004"]) in mismatch
    assert wrong_hash in mismatch and "/sub-004.edf" in mismatch
    not_found = log_text(workflow_copy, "download_raw", "sub-005")
    assert "sub-005" in not_found and "404" in not_found
    assert not list((workflow_copy / "resources/raw").glob("sub-00[45]*"))


def test_download_secrets_stay_out_of_every_output_and_bad_urls_are_refused(
    workflow_copy, quick_config, tmp_path
):
    """A token and credentials reach the server but no file the run writes; a '#' in
    a url is data; redirects leave http(s) never; a size limit; file:// refused."""
    files = {
        p: write_recording(tmp_path / f"{p}.edf", quick_config, p).read_bytes()
        for p in ("sub-001", "sub-002")
    }
    secrets = ("SECRET123", "pw-S3cret")
    with ScriptedHTTPServer() as server:
        server.routes["/sub-001.edf"] = Route(
            files["sub-001"], query="token=SECRET123", credentials="ann:pw-S3cret"
        )
        server.routes["/sub-002.edf"] = Route(files["sub-002"])
        server.routes["/sub-003.edf"] = Route(b"", redirect_to="ftp://127.0.0.1/x.edf")
        server.routes["/sub-004.edf"] = Route(os.urandom(2_000_000))
        port = server.server_port
        urls = {
            "sub-001": f"http://ann:pw-S3cret@127.0.0.1:{port}/sub-001.edf?token=SECRET123",
            # Before: '#' started a comment, the wrong sha256 went unread, rc 0.
            "sub-002": server.url("/sub-002.edf#v2"),
            "sub-003": server.url("/sub-003.edf"),
            "sub-004": server.url("/sub-004.edf"),
        }
        wrong_hash = sha256(b"another file")
        checksums = {"sub-001": sha256(files["sub-001"]), "sub-002": wrong_hash}
        rows = [
            {"participant_id": p, "group": "placebo", "url": url}
            | {"sha256": checksums.get(p, "")}
            for p, url in urls.items()
        ]
        limits = {"download": {**FAST_DOWNLOADS["download"], "max_file_mb": 1.5}}
        args = write_config(
            workflow_copy, "remote", rows, source={"kind": "download"}, **limits
        )
        methods = "results/report/workflow.rst"
        result = run_snakemake(
            workflow_copy,
            "--cores",
            "2",
            "--keep-going",
            CELLS,
            methods,
            *args,
            check=False,
        )
        redirects = server.requests_for("/sub-003.edf")

    assert result.returncode != 0
    assert (workflow_copy / "results/preprocessed/sub-001.parquet").exists()
    mismatch = log_text(workflow_copy, "download_raw", "sub-002")
    assert f"expected {wrong_hash}" in mismatch and "/sub-002.edf#***" in mismatch
    assert len(redirects) == 1
    assert "has the scheme 'ftp'" in log_text(workflow_copy, "download_raw", "sub-003")
    assert (
        "/sub-004.edf announces 2.0 MB, more than the limit of 1.5 MB "
        "(download.max_file_mb)"
    ) in log_text(workflow_copy, "download_raw", "sub-004")
    assert not list((workflow_copy / "resources/raw").glob("sub-00[234]*"))
    written = [
        path
        for folder in ("results", "logs", ".snakemake", "resources")
        for path in (workflow_copy / folder).rglob("*")
        if path.is_file()
    ]
    assert any(p.name.endswith(".verified.json") for p in written)
    assert any("metadata" in p.parts for p in written)
    assert any("benchmarks" in p.parts for p in written)
    leaks = [
        str(path.relative_to(workflow_copy))
        for path in written
        if any(secret.encode() in path.read_bytes() for secret in secrets)
    ]
    assert leaks == []

    # A file:// url, in the sheet or as the archive, stops the run before any job.
    rows[1]["url"] = "file:///etc/passwd"
    args = write_config(workflow_copy, "local-url", rows, source={"kind": "download"})
    failed = run_snakemake(workflow_copy, "-n", *args, check=False)
    assert failed.returncode != 0
    assert (
        "sample sheet local-url.tsv, line 3 (participant sub-002): url "
        "file:///etc/passwd has the scheme 'file'"
    ) in failed.stdout + failed.stderr
    rows = [{"participant_id": "sub-001", "group": "placebo", "member": "a.edf"}]
    archive = {"kind": "download", "archive_url": "file:///etc/study.zip"}
    args = write_config(workflow_copy, "local-archive", rows, source=archive)
    failed = run_snakemake(workflow_copy, "-n", *args, check=False)
    assert failed.returncode != 0
    assert "source.archive_url: url file:///etc/study.zip has the scheme 'file'" in (
        failed.stdout + failed.stderr
    )


def test_study_archive_members_and_a_participant_missing_from_it(
    workflow_copy, quick_config, tmp_path
):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for participant in ("sub-001", "sub-002"):
            path = write_recording(
                tmp_path / f"{participant}.edf", quick_config, participant
            )
            bundle.write(path, f"emg/{participant}.edf")
    rows = [
        {"participant_id": p, "group": "placebo", "member": f"emg/{p}.edf"}
        for p in ("sub-001", "sub-002", "sub-003")
    ]
    with ScriptedHTTPServer() as server:
        server.routes["/study.zip"] = Route(archive.read_bytes())
        source = {
            "kind": "download",
            "archive_url": server.url("/study.zip"),
            "archive_sha256": sha256(archive.read_bytes()),
        }
        args = write_config(workflow_copy, "archive", rows, source=source)
        result = run_snakemake(
            workflow_copy, "--cores", "2", "--keep-going", CELLS, *args, check=False
        )
    assert result.returncode != 0
    log = log_text(workflow_copy, "download_raw", "sub-003")
    assert "sub-003" in log and "emg/sub-003.edf" in log and "study.zip" in log
    for participant in ("sub-001", "sub-002"):
        assert (workflow_copy / f"results/preprocessed/{participant}.parquet").exists()


@pytest.mark.parametrize("example", ["csv-lab"])
def test_worked_example_of_own_recordings_runs(workflow_copy, quick_config, example):
    """The worked example of docs/own-recordings.md, on files made like a lab's."""
    example_dir = workflow_copy / "config" / "examples" / example
    overrides = yaml.safe_load((example_dir / "config.yaml").read_text())
    sheet = pd.read_csv(example_dir / "participants.tsv", sep="\t", dtype=str)
    raw = workflow_copy / overrides["source"]["local_dir"]
    raw.mkdir(parents=True)
    triggers = overrides["recording"]["triggers"]
    levels = {c: float(level) for level, c in triggers["trigger"].items()}
    simulation = {
        **quick_config["simulation"],
        "mains_hz": overrides["preprocess"]["mains_hz"],
    }
    lab_config = {**quick_config, "simulation": simulation}
    for participant, group in zip(sheet["participant_id"], sheet["group"]):
        export_as_lab_csv(
            raw / f"{participant}.csv",
            lab_config,
            participant,
            group,
            overrides,
            levels,
        )
    config_file = str(example_dir / "config.yaml")
    run_snakemake(workflow_copy, "--cores", "2", CELLS, "--configfile", config_file)
    cells = pd.read_parquet(workflow_copy / CELLS)
    assert sorted(cells["participant"].unique()) == sorted(sheet["participant_id"])
    assert set(cells["muscle"]) == set(quick_config["study"]["muscles"])


def export_as_lab_csv(path, config, participant, group, overrides, levels):
    """A simulated recording as an acquisition program's text export with a trigger."""
    plan = plan_participant(config, participant, group)
    data = synthesize(plan, config)
    fs = config["simulation"]["sampling_rate_hz"]
    trigger = pd.Series(0.0, index=range(data.shape[1]))
    for trial in plan.trials:
        start = int(round(trial.onset_s * fs))
        trigger.iloc[start : start + int(0.1 * fs)] = levels[trial.condition]
    columns = {
        "time_s": [i / fs for i in range(data.shape[1])],
        **{
            overrides["channels"][m]: row
            for m, row in zip(config["study"]["muscles"], data)
        },
        "trigger": trigger.to_numpy(),
    }
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.4f")
