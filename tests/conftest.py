"""Shared fixtures: the project's configuration and throw-away copies of the workflow."""

import copy
from dataclasses import dataclass
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from helpers.devtools import PROJECT_ROOT, copy_workflow, deploy, run_snakemake
from mimicry.config.sample_sheet import read_sample_sheet
from mimicry.config.validation import load_config

# Material shared with the developers and CI beside the checkout, absent on a user's clone.
SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def fmov_study():
    """The real public study ../shared/realdata/fmov (37 participants at 100 Hz), or a
    skip naming what is missing."""
    path = SHARED / "realdata" / "fmov"
    if not (path / "participants.csv").is_file():
        pytest.skip(
            f"{path} is absent: the real study is shared with the developers and CI, "
            "not shipped with the workflow"
        )
    return path


@pytest.fixture(scope="session")
def fmov_config(fmov_study):
    """config/examples/fmov on top of the default config, reading the real study's
    files from disk instead of downloading them."""
    config = load_config(
        PROJECT_ROOT / "config" / "config.yaml",
        PROJECT_ROOT / "config" / "examples" / "fmov" / "config.yaml",
    )
    config["source"].update(
        kind="local",
        local_dir=str(fmov_study / "FMOV"),
        file_pattern="{participant_id}_FMOV_preprocessed.txt",
    )
    return config


@pytest.fixture(scope="session")
def default_config():
    return load_config(PROJECT_ROOT / "config" / "config.yaml")


@pytest.fixture(scope="session")
def quick_config():
    return load_config(
        PROJECT_ROOT / "config" / "config.yaml", PROJECT_ROOT / "config" / "quick.yaml"
    )


@pytest.fixture(scope="session")
def lowrate_config():
    """The quick study exported at 100 Hz like BIOPAC text exports (config/lowrate.yaml)."""
    return load_config(
        *(
            PROJECT_ROOT / "config" / name
            for name in ("config.yaml", "quick.yaml", "lowrate.yaml")
        )
    )


@pytest.fixture(scope="session")
def steady_quick_config(quick_config):
    """The quick study with a steady EMG level and no spontaneous bursts: the only
    departures from the responses are the injected artifacts and flaws."""
    config = copy.deepcopy(quick_config)
    config["simulation"]["level_fluctuation"]["components"] = []
    config["simulation"]["spontaneous_bursts"]["rate_per_s"] = 0.0
    return config


@pytest.fixture(scope="session")
def clean_config():
    """The default study with the clean simulation (config/clean.yaml)."""
    return load_config(
        *(PROJECT_ROOT / "config" / name for name in ("config.yaml", "clean.yaml"))
    )


@pytest.fixture(scope="session")
def clean_quick_config():
    """The quick study with the clean simulation: every participant mimics."""
    return load_config(
        *(PROJECT_ROOT / "config" / name for name in ("config.yaml", "clean.yaml")),
        PROJECT_ROOT / "config" / "quick.yaml",
    )


@pytest.fixture(scope="session")
def default_participants(default_config):
    """(participant id, group) of the default sample sheet, in its order."""
    sheet = read_sample_sheet(PROJECT_ROOT / default_config["participants"])
    return list(zip(sheet["participant_id"], sheet["group"]))


@pytest.fixture
def workflow_copy(tmp_path):
    return copy_workflow(tmp_path / "workflow-copy")


@dataclass(frozen=True)
class QuickStudyRun:
    """A finished run: its directory, the arguments it ran with and what it printed."""

    workdir: Path
    args: tuple
    output: str


@pytest.fixture(scope="session")
def deployed_quick_study(tmp_path_factory):
    """The whole quick study (config/quick.yaml unchanged) run once through the workflow
    deployed as a Snakemake module (helpers.devtools.deploy), shared by the tests of the
    deployment (test_deployment.py) and of the Stan stage (test_workflow_models.py).
    The deployment has no profiles/: --benchmark-extended (profiles/default in a
    checkout) makes the benchmark files name their rules for results/benchmarks/summary.tsv.
    args ends with --configfile, so a test can append config files."""
    deployment = deploy(tmp_path_factory.mktemp("quick-study") / "deployment")
    args = ("--benchmark-extended", "--configfile", "config/quick.yaml")
    run = run_snakemake(deployment, "--cores", "2", *args)
    return QuickStudyRun(deployment, args, run.stdout + run.stderr)


# Fixtures that run Snakemake.
RUNS_SNAKEMAKE = {"workflow_copy", "deployed_quick_study"}
# The modules whose tests use the deployed quick-study run, a session fixture: the
# scheduler below sends them to one worker. The scheduler sees only node ids, not
# fixtures, so collection checks the list.
SHARED_RUN_MODULES = ("tests/test_deployment.py", "tests/test_workflow_models.py")


def module_of(nodeid):
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    """A test that copies the workflow or uses a shared run runs Snakemake, so it
    belongs to the workflow tier; `make test-fast` (-m "not workflow") would otherwise
    pick it up. A module using the shared run must be in SHARED_RUN_MODULES, or each
    worker would make the run. Modules with workflow tests run first, so that under
    `make test`'s workers (below) the many short unit tests fill in the end."""
    unmarked = [
        item.nodeid
        for item in items
        if RUNS_SNAKEMAKE & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("workflow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            f"tests using {' or '.join(sorted(RUNS_SNAKEMAKE))} need "
            "@pytest.mark.workflow: " + ", ".join(unmarked)
        )
    unlisted = {
        module_of(item.nodeid)
        for item in items
        if "deployed_quick_study" in getattr(item, "fixturenames", ())
    } - set(SHARED_RUN_MODULES)
    if unlisted:
        raise pytest.UsageError(
            "modules using deployed_quick_study must be listed in "
            "tests/conftest.py SHARED_RUN_MODULES: " + ", ".join(sorted(unlisted))
        )
    with_workflow_tests = {
        item.path for item in items if item.get_closest_marker("workflow")
    }
    items.sort(key=lambda item: item.path not in with_workflow_tests)


@pytest.hookimpl(optionalhook=True)  # pytest runs without xdist too (-p no:xdist)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs the tests on one pytest-xdist worker per core. Each module goes
    whole to one worker, so its module fixtures are made once, and the modules of the
    shared quick-study run go to the same worker; `--no-loadscope-reorder` hands the
    modules out in collection order."""

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = module_of(nodeid)
            return "deployed_quick_study" if module in SHARED_RUN_MODULES else module

    return ModuleScheduling(config, log)
