"""A config file that is a YTE template runs Python when read: snakemake runs it (a
config file is code), the project's own commands refuse it unless --allow-yte."""

import subprocess
import sys

import pytest

from mimicry.config.files import YteRefused, configfiles_in_args, read_config_file
from helpers.devtools import PROJECT_ROOT, run_snakemake
from mimicry.config.validation import load_config


def yte_config(directory, marker):
    """A YTE config whose seed expression creates marker when it is evaluated."""
    path = directory / "yte.yaml"
    path.write_text(
        "__use_yte__: true\n"
        f"seed: ?__import__('pathlib').Path({str(marker)!r}).touch() or 7\n"
    )
    return path


def run_module(module, *args, cwd):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "module, args",
    [
        ("mimicry.reporting.report", ["{out}/report.html", "--configfile", "{config}"]),
        (
            "mimicry.robustness.study_like_mine",
            ["{out}/cells.csv", "--out", "{out}/like", "--configfile", "{config}"],
        ),
        (
            "mimicry.bayes.sbc",
            ["--replicates", "2", "--out", "{out}/sbc", "--configfile", "{config}"],
        ),
    ],
)
def test_commands_refuse_a_yte_config_without_running_it(tmp_path, module, args):
    marker = tmp_path / "code-ran"
    config = yte_config(tmp_path, marker)
    filled = [arg.format(out=tmp_path, config=config) for arg in args]
    result = run_module(module, *filled, cwd=PROJECT_ROOT)
    assert result.returncode != 0
    assert f"{config}: a YTE template" in result.stderr
    assert "--allow-yte" in result.stderr
    assert not marker.exists()


def test_allow_yte_renders_the_template_as_snakemake_does(tmp_path):
    marker = tmp_path / "code-ran"
    config = yte_config(tmp_path, marker)
    with pytest.raises(YteRefused, match="yte.yaml: a YTE template"):
        load_config(PROJECT_ROOT / "config" / "config.yaml", config)
    assert not marker.exists()
    loaded = load_config(
        PROJECT_ROOT / "config" / "config.yaml", config, allow_yte=True
    )
    assert loaded["seed"] == 7 and marker.exists()


@pytest.mark.workflow
def test_snakemake_runs_a_yte_config_on_a_dry_run(workflow_copy, tmp_path):
    """What docs/security.md says: a config file is code."""
    marker = tmp_path / "code-ran"
    run_snakemake(
        workflow_copy, "-n", "--configfile", str(yte_config(tmp_path, marker))
    )
    assert marker.exists()


def test_data_configs_read_as_before(tmp_path):
    json_file = tmp_path / "c.json"
    json_file.write_text('{"__use_yte__": true, "seed": "?1"}')
    assert read_config_file(json_file) == {"__use_yte__": True, "seed": "?1"}
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_config_file(empty) == {}
    not_yte = tmp_path / "off.yaml"
    not_yte.write_text("__use_yte__: false\nseed: ?1\n")
    assert read_config_file(not_yte) == {"seed": "?1"}


def test_configfiles_in_args():
    args = ["--cores", "2", "--configfile", "a.yaml", "b.yaml", "-n", "--configfile=c"]
    assert configfiles_in_args(args) == ["a.yaml", "b.yaml", "c"]
    assert configfiles_in_args(["--configfiles", "d", "--report", "x"]) == ["d"]
