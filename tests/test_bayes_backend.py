"""Backend choice and the CmdStanPy compile cache (CmdStan itself is faked here)."""

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

    def __init__(self, stan_file, exe_file=None):
        self.stan_file, self.exe_file = Path(stan_file), exe_file
        if exe_file is None:
            self.compiled.append(self.stan_file)
            self.stan_file.with_suffix("").write_text("binary")


def test_cmdstan_models_compile_once_per_source(monkeypatch, tmp_path):
    monkeypatch.setattr(cmdstanpy, "CmdStanModel", FakeCmdStanModel)
    FakeCmdStanModel.compiled.clear()
    source = tmp_path / "model.stan"
    source.write_text("parameters { real x; } model { x ~ std_normal(); }")
    cache = tmp_path / "cache"

    first = backend.compile_cmdstan_model(source, cache)
    second = backend.compile_cmdstan_model(source, cache)
    assert len(FakeCmdStanModel.compiled) == 1
    model_dir = cache / backend.source_hash(source)
    assert first.exe_file == second.exe_file == model_dir / "model"
    assert (model_dir / "model.stan").read_text() == source.read_text()
    # Only the final directory and its lock remain: the build directory was renamed.
    assert sorted(path.name for path in cache.iterdir()) == sorted(
        [model_dir.name, model_dir.name + ".lock"]
    )

    source.write_text("parameters { real x; } model { x ~ normal(1, 1); }")
    backend.compile_cmdstan_model(source, cache)
    assert len(FakeCmdStanModel.compiled) == 2
