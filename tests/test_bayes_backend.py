"""Backend choice and the CmdStanPy compile cache (CmdStan itself is faked here: its
'compiler' writes a shell script that answers `info` as a model executable does)."""

import stat
from pathlib import Path

import cmdstanpy
import pytest
from mimicry.bayes import backend


def test_auto_falls_back_to_pystan_without_cmdstan(monkeypatch):
    monkeypatch.setattr(backend, "cmdstan_available", lambda: False)
    assert backend.resolve_backend("auto") == "pystan"
    with pytest.raises(backend.BackendError, match="no CmdStan installation"):
        backend.resolve_backend("cmdstanpy")
    with pytest.raises(backend.BackendError, match="must be one of"):
        backend.resolve_backend("rstan")


def test_auto_prefers_cmdstanpy_when_installed(monkeypatch):
    monkeypatch.setattr(backend, "cmdstan_available", lambda: True)
    assert backend.resolve_backend("auto") == "cmdstanpy"


class FakeCmdStanModel:
    """Stands in for cmdstanpy.CmdStanModel: 'compiling' writes the executable."""

    compiled = []

    def __init__(self, stan_file, exe_file=None, cpp_options=None):
        self.stan_file, self.exe_file = Path(stan_file), exe_file
        if exe_file is None:
            self.compiled.append(self.stan_file)
            write_script(self.stan_file.with_suffix(""), "exit 0")


def write_script(path, body):
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_cmdstan(monkeypatch, tmp_path):
    """A CmdStan 'installation' at a path of its own, with the fake compiler."""
    installation = tmp_path / "cmdstan-2.35.0"
    installation.mkdir()
    monkeypatch.setattr(cmdstanpy, "CmdStanModel", FakeCmdStanModel)
    monkeypatch.setattr(cmdstanpy, "cmdstan_path", lambda: str(installation))
    monkeypatch.setattr(cmdstanpy, "cmdstan_version", lambda: (2, 35))
    FakeCmdStanModel.compiled.clear()
    return installation


def test_cmdstan_models_compile_once_per_source(fake_cmdstan, tmp_path):
    source = tmp_path / "model.stan"
    source.write_text("parameters { real x; } model { x ~ std_normal(); }")
    cache = tmp_path / "cache"

    first = backend.compile_cmdstan_model(source, cache)
    second = backend.compile_cmdstan_model(source, cache)
    assert len(FakeCmdStanModel.compiled) == 1
    model_dir = cache / backend.cmdstan_build_key(source)
    assert first.exe_file == second.exe_file == model_dir / "model"
    assert (model_dir / "model.stan").read_text() == source.read_text()
    # Only the final directory and its lock remain: the build directory was renamed.
    assert sorted(path.name for path in cache.iterdir()) == sorted(
        [model_dir.name, model_dir.name + ".lock"]
    )

    source.write_text("parameters { real x; } model { x ~ normal(1, 1); }")
    backend.compile_cmdstan_model(source, cache)
    assert len(FakeCmdStanModel.compiled) == 2


def test_cached_executables_are_rebuilt_for_another_cmdstan_or_when_broken(
    fake_cmdstan, monkeypatch, tmp_path
):
    source = tmp_path / "model.stan"
    source.write_text("parameters { real x; } model { x ~ std_normal(); }")
    cache = tmp_path / "cache"
    first = backend.compile_cmdstan_model(source, cache)

    # Another CmdStan version: another key, another build.
    monkeypatch.setattr(cmdstanpy, "cmdstan_version", lambda: (2, 36))
    second = backend.compile_cmdstan_model(source, cache)
    assert len(FakeCmdStanModel.compiled) == 2
    assert first.exe_file != second.exe_file

    # An executable that no longer loads (as one whose TBB library was removed).
    write_script(
        second.exe_file,
        "echo 'error while loading shared libraries: libtbb.so.2' >&2; exit 127",
    )
    third = backend.compile_cmdstan_model(source, cache)
    assert len(FakeCmdStanModel.compiled) == 3
    assert third.exe_file == second.exe_file
    assert "exit 0" in third.exe_file.read_text()
