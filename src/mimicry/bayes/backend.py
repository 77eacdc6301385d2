"""Sample the Stan program with CmdStanPy or PyStan 3 and return ArviZ InferenceData.

Both backends run the same ``.stan`` file and return the same groups, variable names
and dimensions (see :mod:`mimicry.bayes.inference_data`).

Sampler settings are a plain dict:

- ``backend``: "auto" (CmdStanPy when a CmdStan installation is found, else PyStan),
  "cmdstanpy" or "pystan";
- ``chains``, ``warmup``, ``draws`` (per chain), ``adapt_delta``, ``max_treedepth``,
  ``seed``: the usual NUTS settings;
- ``refresh`` (optional, default 100): iterations between progress lines in the log;
- ``parallel_chains`` (optional, CmdStanPy only; default: one per CPU; PyStan always
  runs one chain per CPU);
- ``cache_dir`` (optional, CmdStanPy only): where compiled models are kept, default
  ``~/.cache/mimicry/cmdstan``.

Compiled models are cached: PyStan's httpstan keys its own cache by the program code
and the Python environment (:func:`pystan_model_name`); CmdStanPy executables go to
``cache_dir/<key>/``, keyed by the source, the CmdStan installation and version,
CmdStanPy's version and the compiler options, and checked to run before they are used.
Both are guarded by a file lock, so parallel jobs never compile into the same place.

Both backends log the same messages, whatever their own console output says:
``Stan program <file> (<sha256 prefix>): compiled in <s> s`` or ``...: reused the
compiled program``, and while sampling ``sampling progress: <n> of <total> iterations``
(warmup and draws of all chains).
"""

import contextlib
import fcntl
import importlib.machinery
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import arviz as az
from mimicry.bayes.inference_data import tidy_inference_data
from mimicry.bayes.predictive import add_predictions
from mimicry.package_data import STAN_PROGRAM

log = logging.getLogger(__name__)

BACKENDS = ("auto", "cmdstanpy", "pystan")
PYSTAN_SAMPLER = "stan::services::sample::hmc_nuts_diag_e_adapt"
DEFAULT_REFRESH = 100
DEFAULT_CMDSTAN_CACHE = Path.home() / ".cache" / "mimicry" / "cmdstan"
# Part of the cache key: a change of options builds a new executable.
CMDSTAN_CPP_OPTIONS = {}
# The most CmdStan writes: draws as exact as a double's text form allows.
CMDSTAN_SIG_FIGS = 18
DEFAULT_STAN_FILE = STAN_PROGRAM


class BackendError(RuntimeError):
    """No usable Stan backend, or the requested one is not installed."""


class SamplingError(RuntimeError):
    """Compiling or sampling failed; the message names the project's Stan file."""


# Where compiler and sampler messages name the program: the cached copy, or
# httpstan's temporary file ("in '/tmp/httpstan_x/model_y.stan', line 156, ...").
PROGRAM_REFERENCE = re.compile(r"""(?<=['"])[^'"\s]*\.stan(?=['"])""")


def name_program(message, stan_file):
    """message with every reference to a copy of the Stan program replaced by
    stan_file, so that its line numbers point into the project's file."""
    return PROGRAM_REFERENCE.sub(str(stan_file), message)


def cmdstan_available():
    """Whether CmdStanPy is installed and finds a CmdStan installation."""
    try:
        import cmdstanpy

        cmdstanpy.cmdstan_path()
    except (ImportError, ValueError):
        return False
    return True


def resolve_backend(name="auto"):
    """The backend to use: "cmdstanpy" or "pystan"."""
    if name not in BACKENDS:
        raise BackendError(f"stan backend must be one of {BACKENDS}, not '{name}'")
    if name == "auto":
        return "cmdstanpy" if cmdstan_available() else "pystan"
    if name == "cmdstanpy" and not cmdstan_available():
        raise BackendError(
            "backend 'cmdstanpy' was requested but no CmdStan installation was found; "
            "install one (python -m cmdstanpy.install_cmdstan) or use backend 'pystan'"
        )
    return name


def sample(model_input, settings, stan_file=DEFAULT_STAN_FILE):
    """Draw from the posterior (or the prior, if ``model_input.prior_only``).

    Returns InferenceData with groups posterior (prior), posterior_predictive
    (prior_predictive) holding y_rep, log_likelihood holding log_lik (posterior only),
    sample_stats (sample_stats_prior) and observed_data. y_rep and log_lik are
    computed from the draws (:mod:`mimicry.bayes.predictive`), not by the sampler.
    """
    backend = resolve_backend(settings.get("backend", "auto"))
    run = "prior" if model_input.prior_only else "posterior"
    log.info(
        "%s model, %s likelihood, %s: %d chains x (%d warmup + %d draws) with %s",
        model_input.model,
        model_input.likelihood,
        run,
        settings["chains"],
        settings["warmup"],
        settings["draws"],
        backend,
    )
    sampler = _sample_cmdstanpy if backend == "cmdstanpy" else _sample_pystan
    started = time.perf_counter()
    try:
        inference_data = sampler(model_input, Path(stan_file), settings)
    except Exception as error:
        named = name_program(str(error), stan_file)
        if named == str(error):
            raise
        raise SamplingError(named) from error
    add_predictions(inference_data, model_input, settings["seed"])
    log.info(
        "sampling, conversion and predictions took %.1f s",
        time.perf_counter() - started,
    )
    return tidy_inference_data(inference_data, model_input)


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created if needed) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cmdstan_build_key(stan_file):
    """SHA-256 of what a CmdStan executable depends on: the Stan source, the CmdStan
    installation (path and version), CmdStanPy's version and the compiler options.

    An executable built against another CmdStan may not even load (its TBB library
    is gone), so it must not be found under the same key.
    """
    import cmdstanpy

    build = {
        "source_sha256": hashlib.sha256(Path(stan_file).read_bytes()).hexdigest(),
        "cmdstan_path": str(Path(cmdstanpy.cmdstan_path()).resolve()),
        "cmdstan_version": list(cmdstanpy.cmdstan_version() or ()),
        "cmdstanpy_version": cmdstanpy.__version__,
        "cpp_options": CMDSTAN_CPP_OPTIONS,
    }
    return hashlib.sha256(json.dumps(build, sort_keys=True).encode()).hexdigest()


def _executable_runs(exe_file):
    """Whether a compiled model starts: CmdStan executables answer `info`."""
    try:
        result = subprocess.run(
            [str(exe_file), "info"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("cached executable %s does not run: %s", exe_file, error)
        return False
    if result.returncode != 0:
        log.warning(
            "cached executable %s does not run (exit %d): %s",
            exe_file,
            result.returncode,
            result.stderr.strip()[-500:],
        )
    return result.returncode == 0


def program_label(stan_file):
    """How the log names a Stan program: its file name and a prefix of its SHA-256."""
    digest = hashlib.sha256(Path(stan_file).read_bytes()).hexdigest()
    return f"Stan program {Path(stan_file).name} ({digest[:12]})"


def _log_build(stan_file, compiled, seconds, where):
    if compiled:
        log.info(
            "%s: compiled in %.1f s (%s)", program_label(stan_file), seconds, where
        )
    else:
        log.info(
            "%s: reused the compiled program (%s)", program_label(stan_file), where
        )


class SamplingProgress:
    """Logs ``sampling progress: <n> of <total> iterations`` whenever the count of
    iterations done (warmup and draws, summed over chains) changes."""

    def __init__(self, settings):
        self.total = settings["chains"] * (settings["warmup"] + settings["draws"])
        self.done = 0
        self.per_chain = {}

    def all_chains(self, done):
        if done != self.done:
            self.done = done
            log.info("sampling progress: %d of %d iterations", done, self.total)

    def chain(self, chain, done):
        self.per_chain[chain] = done
        self.all_chains(sum(self.per_chain.values()))


class ConsoleLines(io.TextIOBase):
    """A text stream standing in for a backend's console: each complete line (per
    writing thread, since CmdStanPy prints from one thread per chain) goes to
    ``on_line``."""

    def __init__(self, on_line):
        self.on_line = on_line
        self.partial = {}
        self.lock = threading.Lock()

    def writable(self):
        return True

    def write(self, text):
        with self.lock:
            thread = threading.get_ident()
            *lines, self.partial[thread] = (self.partial.get(thread, "") + text).split(
                "\n"
            )
            for line in lines:
                self.on_line(line)
        return len(text)

    def close(self):
        for rest in self.partial.values():
            if rest:
                self.on_line(rest)
        self.partial.clear()
        super().close()


def _passed_on(stream):
    """on_line for console lines that are not progress: written to ``stream`` as they
    came, blank lines left out."""

    def write(line):
        if line.strip():
            stream.write(line + "\n")
            stream.flush()

    return write


def _converter_arguments(model_input):
    return {"coords": model_input.coords(), "dims": model_input.dims()}


# --- PyStan 3 ---------------------------------------------------------------------


def import_pystan():
    """Import PyStan 3 quietly."""
    # httpstan's web server would log each of PyStan's progress polls (20 a second).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # PyStan 3.10 discovers plugins through pkg_resources (hence setuptools < 81).
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    import stan

    return stan


@contextlib.contextmanager
def _environment_python():
    """sys.executable set to this environment's ``python`` for the block.

    httpstan's model and fit names hash sys.executable, the name that started the
    interpreter: ``.venv/bin/python`` and ``.venv/bin/python3`` (the same interpreter)
    would each compile the program. The environment's ``python`` serves for every name
    of the same interpreter; another environment still gets its own name.
    """
    started_as = sys.executable
    canonical = Path(sys.prefix) / "bin" / "python"
    try:
        same = os.path.samefile(canonical, started_as)
    except OSError:
        same = False
    if same:
        sys.executable = str(canonical)
    try:
        yield
    finally:
        sys.executable = started_as


def pystan_model_name(program_code):
    """httpstan's name for the program (``models/<id>``) in this environment."""
    import httpstan.models

    with _environment_python():
        return httpstan.models.calculate_model_name(program_code)


def _pystan_module_cached(model_name):
    """Whether httpstan's cache holds the program's compiled module."""
    import httpstan.cache

    directory = httpstan.cache.model_directory(model_name)
    return directory.is_dir() and any(
        path.suffix in importlib.machinery.EXTENSION_SUFFIXES
        for path in directory.iterdir()
    )


def build_pystan_model(stan_file, data, seed):
    """Compile (or fetch from httpstan's cache) the program and bind the data.

    httpstan deletes and rebuilds a model's cache directory when it finds no compiled
    module there, so two jobs compiling the same program at once could break each
    other: a file lock per program serialises them, and the second finds the first's
    module.
    """
    stan = import_pystan()
    import httpstan.cache

    program = Path(stan_file).read_text()
    model_name = pystan_model_name(program)
    lock = (
        httpstan.cache.cache_directory() / "locks" / f"{model_name.split('/')[1]}.lock"
    )
    with file_lock(lock), tempfile.TemporaryDirectory() as scratch:
        _delete_interrupted_build(model_name)
        compiled = not _pystan_module_cached(model_name)
        started = time.perf_counter()
        # setuptools writes its object files to ./build: keep them out of the project.
        with contextlib.chdir(scratch), _environment_python():
            if compiled:
                _compile_into_httpstan_cache(program, model_name)
            model = stan.build(program, data=data, random_seed=seed)
        seconds = time.perf_counter() - started
    _log_build(
        stan_file,
        compiled,
        seconds,
        f"PyStan, {httpstan.cache.model_directory(model_name)}",
    )
    return model


# httpstan gives stanc 1 s, which it takes for the project's program on a busy 2-core
# machine (0.35 s when idle); the compile gets this instead.
STANC_TIMEOUT_S = 120


class _PatientSubprocess:
    """The subprocess module for httpstan.compile, with STANC_TIMEOUT_S for its run."""

    def __getattr__(self, name):
        return getattr(subprocess, name)

    @staticmethod
    def run(*args, **kwargs):
        return subprocess.run(*args, **{**kwargs, "timeout": STANC_TIMEOUT_S})


def _compile_into_httpstan_cache(program, model_name):
    """Compile the program into httpstan's cache as httpstan's POST /models does
    (stanc warnings, the extension module, then stderr.log, which marks the build
    complete), but in this thread and without its time limits: PyStan's HTTP client
    gives up after 5 minutes, which a compile on a busy machine can take (its give-up
    left a build without stderr.log), and stanc gets STANC_TIMEOUT_S. A program stanc
    rejects is left to stan.build, which reports the error."""
    import asyncio

    import httpstan.cache
    import httpstan.compile
    import httpstan.models

    stan_model_name = f"model_{model_name.split('/')[1]}"
    httpstan.cache.delete_model_directory(model_name)
    httpstan.compile.subprocess = _PatientSubprocess()
    try:
        try:
            _, stanc_warnings = httpstan.compile.compile(program, stan_model_name)
        except ValueError:
            return
        httpstan.cache.dump_stanc_warnings(stanc_warnings, model_name)
        compiler_output = asyncio.run(
            httpstan.models.build_services_extension_module(program)
        )
    finally:
        httpstan.compile.subprocess = subprocess
    httpstan.cache.dump_services_extension_module_compiler_output(
        compiler_output, model_name
    )


def _delete_interrupted_build(model_name):
    """Delete a model's httpstan cache directory that an interrupted build left.

    httpstan writes the compiler's stderr.log after the compiled module; a build killed
    in between (a job stopped, or a client timing out on a busy machine) leaves a
    module without it, which httpstan takes for a finished build and then fails on
    (FileNotFoundError, or a garbled error reply) in every later run. Called under
    the program's lock, so no build of it is in progress.
    """
    import httpstan.cache

    directory = httpstan.cache.model_directory(model_name)
    if directory.is_dir() and not (directory / "stderr.log").is_file():
        log.warning(
            "httpstan's cache holds an interrupted build of %s (no stderr.log): "
            "deleting %s and building again",
            model_name,
            directory,
        )
        httpstan.cache.delete_model_directory(model_name)


def _sample_pystan(model_input, stan_file, settings):
    model = build_pystan_model(stan_file, model_input.data, settings["seed"])
    fit = pystan_sample_logged(model, settings)
    return az.from_pystan(
        **{"prior" if model_input.prior_only else "posterior": fit},
        **_converter_arguments(model_input),
    )


# PyStan's progress on stderr: "Sampling:  40% (240/600)", "Sampling: 100%, done.".
PYSTAN_PROGRESS = re.compile(r"^Sampling:\s+\d+%(?: \((\d+)/\d+\))?(?:, done\.)?$")


def pystan_sample_logged(model, settings):
    """model.sample with PyStan's progress lines (on stderr) turned into the project's
    progress messages; its other console output passes through to stderr. The fits
    httpstan caches are deleted afterwards."""
    sampler_arguments = {
        "num_warmup": settings["warmup"],
        "num_samples": settings["draws"],
        "delta": settings["adapt_delta"],
        "max_depth": settings["max_treedepth"],
        "refresh": settings.get("refresh", DEFAULT_REFRESH),
    }
    progress = SamplingProgress(settings)
    passed_on = _passed_on(sys.stderr)

    def on_line(line):
        if match := PYSTAN_PROGRESS.match(line.strip()):
            if match[1] is not None:
                progress.all_chains(int(match[1]))
        else:
            passed_on(line)

    with _environment_python():
        fit_names = _pystan_fit_names(model, settings["chains"], sampler_arguments)
    with (
        _fits_deleted_afterwards(fit_names),
        _environment_python(),
        ConsoleLines(on_line) as console,
        contextlib.redirect_stderr(console),
    ):
        return model.sample(num_chains=settings["chains"], **sampler_arguments)


def _pystan_fit_names(model, chains, sampler_arguments):
    """The names under which httpstan will cache this sampling's chains.

    httpstan keeps every seeded fit (hundreds of MB each). The names are computed
    exactly as httpstan does for each chain's request; they are stable within one
    process only (httpstan hashes the pickled request, whose key order follows the
    process's string hashing), so a later job never finds an earlier job's fits.
    """
    import httpstan.fits
    import httpstan.schemas

    names = []
    for chain in range(1, chains + 1):
        request = {
            **sampler_arguments,
            "function": PYSTAN_SAMPLER,
            "chain": chain,
            "data": model.data,
            "init": {},
            "random_seed": model.random_seed,
        }
        arguments = httpstan.schemas.CreateFitRequest().load(
            json.loads(json.dumps(request))
        )
        function = arguments.pop("function")
        names.append(
            httpstan.fits.calculate_fit_name(function, model.model_name, arguments)
        )
    return names


def _fit_register():
    """Where each PyStan sampling lists the fits it will leave in httpstan's cache."""
    import httpstan.cache

    return httpstan.cache.cache_directory() / "mimicry-fits"


@contextlib.contextmanager
def _fits_deleted_afterwards(fit_names):
    """Delete ``fit_names`` from httpstan's cache after the block, even if the
    process is killed in it: the names are registered in a file this process holds
    locked, and the next sampling deletes the fits of every entry whose lock is free
    (its owner is gone)."""
    _delete_orphaned_fits()
    register = _fit_register()
    register.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=register, suffix=".writing", delete=False
    ) as entry:
        fcntl.flock(entry, fcntl.LOCK_EX)
        json.dump(fit_names, entry)
        entry.flush()
        # Locked before it gets a name that other processes look at.
        entry_path = Path(entry.name).with_suffix(".json")
        os.replace(entry.name, entry_path)
        try:
            yield
        except BaseException:
            _delete_fits(fit_names)
            raise
        else:
            if kept_none := _delete_fits(fit_names):
                log.warning("httpstan kept no fits %s to delete", kept_none)
        finally:
            entry_path.unlink()


def _delete_orphaned_fits():
    for entry_path in sorted(_fit_register().glob("*.json")):
        try:
            entry = open(entry_path)
        except FileNotFoundError:  # its owner finished meanwhile
            continue
        with entry:
            try:
                fcntl.flock(entry, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # still sampling
                continue
            if not entry_path.exists():  # its owner finished while we waited
                continue
            fit_names = json.load(entry)
            log.info(
                "deleting %d fits an interrupted sampling left in httpstan's cache",
                len(fit_names),
            )
            _delete_fits(fit_names)
            entry_path.unlink()


def _delete_fits(fit_names):
    """Delete the fits from httpstan's cache; return the names it did not hold."""
    import httpstan.cache

    missing = []
    for name in fit_names:
        try:
            httpstan.cache.delete_fit(name)
        except KeyError:
            missing.append(name)
    return missing


# --- CmdStanPy --------------------------------------------------------------------


def compile_cmdstan_model(stan_file, cache_dir=DEFAULT_CMDSTAN_CACHE):
    """CmdStanModel for ``stan_file``, compiled once per distinct source.

    The executable lives in ``cache_dir/<cmdstan_build_key>/``; a cached one that no
    longer runs is rebuilt. A new one is compiled in a temporary directory and
    renamed into place under a file lock, so parallel jobs neither compile twice nor
    see a half-written executable.
    """
    import cmdstanpy

    cache_dir = Path(cache_dir)
    digest = cmdstan_build_key(stan_file)
    model_dir = cache_dir / digest
    cached_stan = model_dir / "model.stan"
    cached_exe = model_dir / ("model" + (".exe" if os.name == "nt" else ""))
    with file_lock(cache_dir / f"{digest}.lock"):
        started = time.perf_counter()
        compiled = not (cached_exe.exists() and _executable_runs(cached_exe))
        if compiled:
            build_dir = Path(tempfile.mkdtemp(prefix=f"{digest}.", dir=cache_dir))
            try:
                shutil.copyfile(stan_file, build_dir / cached_stan.name)
                cmdstanpy.CmdStanModel(
                    stan_file=build_dir / cached_stan.name,
                    cpp_options=CMDSTAN_CPP_OPTIONS,
                )
                shutil.rmtree(model_dir, ignore_errors=True)  # an interrupted job's
                os.replace(build_dir, model_dir)
            finally:
                shutil.rmtree(build_dir, ignore_errors=True)
        seconds = time.perf_counter() - started
    _log_build(stan_file, compiled, seconds, f"CmdStanPy, {cached_exe}")
    return cmdstanpy.CmdStanModel(stan_file=cached_stan, exe_file=cached_exe)


def cmdstanpy_sample_logged(model, data, settings):
    """model.sample with CmdStan's progress lines turned into the project's progress
    messages; its other console output goes to stderr."""
    progress = SamplingProgress(settings)
    passed_on = _passed_on(sys.stderr)

    def on_line(line):
        if match := CMDSTAN_PROGRESS.match(line.strip()):
            progress.chain(int(match[1] or 1), int(match[2]))
        else:
            passed_on(line)

    # show_console=True prints CmdStan's console, line by line, to stdout (its
    # progress bars would not reach a log): read there, like PyStan's stderr.
    with ConsoleLines(on_line) as console, contextlib.redirect_stdout(console):
        return model.sample(
            data=data,
            chains=settings["chains"],
            parallel_chains=settings.get("parallel_chains") or os.cpu_count(),
            iter_warmup=settings["warmup"],
            iter_sampling=settings["draws"],
            seed=settings["seed"],
            adapt_delta=settings["adapt_delta"],
            max_treedepth=settings["max_treedepth"],
            refresh=settings.get("refresh", DEFAULT_REFRESH),
            # CmdStan writes 6 significant digits by default; PyStan's draws are exact.
            sig_figs=CMDSTAN_SIG_FIGS,
            show_progress=False,
            show_console=True,
        )


# CmdStan's progress:  100 / 600 [ 16%]  (Warmup)", prefixed "Chain [2] "
# when several chains share one console.
CMDSTAN_PROGRESS = re.compile(r"^(?:Chain \[(\d+)\] )?Iteration:\s*(\d+)\s*/\s*\d+")


def _sample_cmdstanpy(model_input, stan_file, settings):
    model = compile_cmdstan_model(
        stan_file, settings.get("cache_dir") or DEFAULT_CMDSTAN_CACHE
    )
    fit = cmdstanpy_sample_logged(model, model_input.data, settings)
    return az.from_cmdstanpy(
        **{"prior" if model_input.prior_only else "posterior": fit},
        **_converter_arguments(model_input),
    )
