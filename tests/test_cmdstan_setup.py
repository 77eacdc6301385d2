"""`make install`'s CmdStan attempt (mimicry.bayes.cmdstan_setup), run as `make` runs
it, with CmdStanPy's real installer. The network is made unreachable (an HTTPS proxy
that refuses connections) and HOME points to an empty folder, so the attempt fails
here and on a machine that could install CmdStan alike."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.workflow


@pytest.fixture
def offline(tmp_path):
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "no_proxy": "",
        "NO_PROXY": "",
    }
    env.pop("CMDSTAN", None)
    return env


def setup(env, outcome, *args):
    run = subprocess.run(
        [sys.executable, "-m", "mimicry.bayes.cmdstan_setup", "--outcome", outcome]
        + list(args),
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return run.stdout.strip().splitlines()


def test_a_failed_attempt_is_reported_kept_and_repeated_only_when_asked(
    offline, tmp_path
):
    outcome = tmp_path / "outcome"
    first = setup(offline, outcome, "--timeout", "120")
    assert first[0].startswith("Installing CmdStan 2.35.0"), first
    reason = outcome.read_text().strip()
    assert "Connection to GitHub failed" in reason
    assert first[-1] == (
        f"Stan backend: PyStan (CmdStan not installable here: {reason}; "
        "`make install-cmdstan` tries again)"
    )
    assert "CmdStan installation failed." in (tmp_path / "outcome.log").read_text()

    # As a second `make install` (requirements changed): the kept outcome, no attempt.
    assert setup(offline, outcome, "--timeout", "120") == first[-1:]
    # As `make install-cmdstan`; the attempt stopped by its time limit this time.
    again = setup(offline, outcome, "--timeout", "1", "--retry")
    assert again[0].startswith("Installing CmdStan"), again
    assert "the installer did not finish in 1 s" in again[-1]
    assert not (tmp_path / "home" / ".cmdstan" / "cmdstan-2.35.0").exists()
