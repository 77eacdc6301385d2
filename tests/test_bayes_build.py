"""Building and running Stan programs through both backends, on a program of two
lines (it compiles in a fraction of the project program's time): httpstan's cache
and its interrupted builds, one build per environment, and the project's own
compile and progress messages, which must not depend on the backend."""

import logging
import re
import subprocess
import sys
from pathlib import Path

import httpstan.cache
import pytest
from mimicry.bayes import cmdstan_available
from mimicry.bayes.backend import (
    build_pystan_model,
    cmdstanpy_sample_logged,
    compile_cmdstan_model,
    program_label,
    pystan_model_name,
    pystan_sample_logged,
)

pytestmark = pytest.mark.workflow

# Fixed text, so that httpstan's cache keeps its build from one session to the next.
TINY_PROGRAM = """parameters {
  real mu;
}
model {
  mu ~ normal(0, 1);
}
"""
SETTINGS = {
    "chains": 2,
    "warmup": 100,
    "draws": 100,
    "adapt_delta": 0.8,
    "max_treedepth": 10,
    "seed": 1,
    "refresh": 20,
}
PROGRESS = re.compile(r"sampling progress: (\d+) of (\d+) iterations")
NO_CMDSTAN = pytest.mark.skipif(
    not cmdstan_available(),
    reason="no CmdStan installation (cmdstanpy.cmdstan_path() fails); `make "
    "install-cmdstan` installs one where GitHub is reachable",
)


@pytest.fixture
def tiny_program(tmp_path):
    path = tmp_path / "tiny.stan"
    path.write_text(TINY_PROGRAM)
    return path


def build_messages(caplog, stan_file):
    label = re.escape(program_label(stan_file))
    return re.findall(
        rf"{label}: (compiled in [\d.]+ s|reused the compiled program)", caplog.text
    )


def test_an_interrupted_build_left_in_the_cache_is_built_again(caplog, tiny_program):
    """A build stopped after httpstan wrote the compiled module but before its
    stderr.log (a killed job, a client timing out on a busy machine) made every later
    build of the program fail; the next build deletes it and compiles again."""
    build_pystan_model(tiny_program, {}, seed=1)
    name = pystan_model_name(TINY_PROGRAM)
    compiler_output = httpstan.cache.model_directory(name) / "stderr.log"
    compiler_output.unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mimicry"):
        model = build_pystan_model(tiny_program, {}, seed=1)
    assert "interrupted build" in caplog.text
    assert [m.split(" in ")[0] for m in build_messages(caplog, tiny_program)] == [
        "compiled"
    ]
    assert compiler_output.is_file()
    assert model.param_names == ("mu",)


def test_every_name_of_the_interpreter_uses_one_build(tiny_program):
    """httpstan names a build after sys.executable: `.venv/bin/python` and
    `.venv/bin/python3`, one interpreter, compiled the program once each."""
    names = [
        path
        for path in (Path(sys.prefix) / "bin").glob("python*")
        if path.samefile(sys.executable)
    ]
    assert len(names) >= 2, names
    script = (
        "import logging, sys; logging.basicConfig(level=logging.INFO); "
        "from mimicry.bayes.backend import build_pystan_model, pystan_model_name; "
        "build_pystan_model(sys.argv[1], {}, seed=1); "
        "print(pystan_model_name(open(sys.argv[1]).read()))"
    )
    runs = [
        subprocess.run(
            [str(name), "-c", script, str(tiny_program)],
            capture_output=True,
            text=True,
            check=True,
        )
        for name in names
    ]
    assert len({run.stdout for run in runs}) == 1, [run.stdout for run in runs]
    for name, run in list(zip(names, runs))[1:]:
        assert "reused the compiled program" in run.stderr, (name, run.stderr)


def assert_progress_logged(caplog):
    progress = [(int(n), int(total)) for n, total in PROGRESS.findall(caplog.text)]
    total = SETTINGS["chains"] * (SETTINGS["warmup"] + SETTINGS["draws"])
    assert progress, caplog.text
    assert {t for _, t in progress} == {total}
    done = [n for n, _ in progress]
    assert done == sorted(done) and done[-1] == total, done
    # One message per refresh of a chain at most, not one per iteration.
    assert len(done) <= total // SETTINGS["refresh"] + SETTINGS["chains"]


def test_pystan_logs_the_projects_progress_messages(caplog, capfd, tiny_program):
    """PyStan's own progress lines ("Sampling: 40% (160/400)") are replaced by the
    project's; the draws are all there."""
    model = build_pystan_model(tiny_program, {}, seed=1)
    with caplog.at_level(logging.INFO, logger="mimicry"):
        fit = pystan_sample_logged(model, SETTINGS)
    assert fit["mu"].shape == (1, SETTINGS["chains"] * SETTINGS["draws"])
    assert_progress_logged(caplog)
    assert "Sampling:" not in capfd.readouterr().err


@NO_CMDSTAN
def test_cmdstanpy_logs_the_same_messages_as_pystan(caplog, capfd, tiny_program):
    with caplog.at_level(logging.INFO, logger="mimicry"):
        compile_cmdstan_model(tiny_program)
        model = compile_cmdstan_model(tiny_program)
        fit = cmdstanpy_sample_logged(model, {}, SETTINGS)
    assert fit.stan_variable("mu").shape == (SETTINGS["chains"] * SETTINGS["draws"],)
    assert build_messages(caplog, tiny_program)[-1] == "reused the compiled program"
    assert_progress_logged(caplog)
    assert "Iteration:" not in capfd.readouterr().out
