# Set-up and entry points. `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= all
# Config files on top of config/config.yaml, e.g. make run CONFIG=config/quick.yaml; the
# report is written with the same ones, since its captions come from the config.
CONFIG ?=
CONFIG_ARGS := $(if $(strip $(CONFIG)),--configfile $(CONFIG))
# Cells table for bench-stan-vs-brms: a workflow cells.parquet or a CSV (see
# benchmarks/stan_drug.py).
CELLS ?= results/aggregate/cells.parquet

.PHONY: install run test test-fast test-cluster lint lock config-reference clean bench-simulate bench-end-to-end bench-brms-setup bench-stan-vs-brms study-like-mine reproduce-check verify bench-raw-content

# One bounded attempt at CmdStan (CmdStanPy's installer) when none is found; a failed
# attempt is kept in CMDSTAN_OUTCOME and not repeated (`make install-cmdstan` retries).
# The last line printed says which Stan backend runs.
CMDSTAN_OUTCOME := $(VENV)/.cmdstan-outcome
CMDSTAN_TIMEOUT ?= 900
CMDSTAN_SETUP = $(BIN)/python -m mimicry.bayes.cmdstan_setup --outcome $(CMDSTAN_OUTCOME) --timeout $(CMDSTAN_TIMEOUT)

install: $(INSTALLED)

$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(CMDSTAN_SETUP) || true
	touch $@

.PHONY: install-cmdstan
install-cmdstan: install
	$(CMDSTAN_SETUP) --retry

run: install
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS)
	$(BIN)/python -m mimicry.reporting.report results/report.html $(CONFIG_ARGS)
	$(BIN)/python -m mimicry.reporting.manifest add results/report.html

# Every file under results/ against results/manifest.tsv, written when the last run
# ended well: names each changed, missing or extra file; exits 1 on any.
verify: install
	$(BIN)/python -m mimicry.reporting.manifest verify

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .
	$(BIN)/black --check --quiet src tests benchmarks workflow/scripts

# One pytest-xdist worker per core; tests/conftest.py sends each module whole to one
# worker, in collection order (workflow modules first).
PYTEST_WORKERS := -n auto --no-loadscope-reorder

test: lint
	$(BIN)/pytest $(PYTEST_WORKERS)

# The unit tier for the edit loop: every test not marked workflow (no Snakemake run, no
# Stan build or sampling, nothing slower than a few seconds); no lint.
test-fast: install
	$(BIN)/pytest $(PYTEST_WORKERS) -m "not workflow"

# A real single-node SLURM cluster on this machine (installs Debian's slurm-wlm, munge
# and MariaDB when missing; needs root); stops every daemon it starts.
test-cluster: install
	MIMICRY_CLUSTER_TESTS=1 $(BIN)/pytest tests/cluster -v

# config/README.md from the JSON schemas; run it after changing a schema.
config-reference: install
	$(BIN)/python -m mimicry.config.reference

lock: install
	{ sed -n '1,2p' requirements.lock; $(BIN)/pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# The quick study run twice from scratch: every output byte-identical, and its key
# numbers (mimicry.reporting.key_numbers) within the tolerances of EXPECTED_NUMBERS, so
# another machine can tell "reproduced" from "different". expected-numbers rewrites
# that file from one run: after a change that is meant to move the numbers.
EXPECTED_NUMBERS := config/expected/quick.tsv
.PHONY: expected-numbers
reproduce-check: install
	$(BIN)/python -m tests.helpers.reproduce --configfile config/quick.yaml --cores 2 --expected $(EXPECTED_NUMBERS)

expected-numbers: install
	$(BIN)/python -m tests.helpers.reproduce --configfile config/quick.yaml --cores 2 --write-expected $(EXPECTED_NUMBERS)

bench-simulate: install
	$(BIN)/python benchmarks/simulate.py --cores 2

# Deletes results/, logs/ and the simulated raw files, then times `make run` and re-runs.
# Simulation settings estimated from a cells table (CELLS: a cells.parquet or CSV) of
# the study CONFIG describes, written to results/study_like_mine with the command to run.
study-like-mine: install
	$(BIN)/python -m mimicry.robustness.study_like_mine $(CELLS) --out results/study_like_mine $(CONFIG_ARGS)

# R, brms and rstan from Debian's packages, for benchmarks only (run as root).
bench-brms-setup:
	apt-get update
	apt-get install -y --no-install-recommends r-base-core r-cran-brms r-cran-rstan r-cran-lme4

# The drug model against the matched brms model, side by side on the same cells.
bench-stan-vs-brms: install
	$(BIN)/python benchmarks/stan_drug.py --vs-brms --cells $(CELLS)

# The frequentist mixed models against lme4 (R from bench-brms-setup), fit by fit on
# the same cells: LME4_CELLS, a cells.parquet or a CSV (see benchmarks/mixed_models.py).
LME4_CELLS ?= ../shared/benchmarks/cells_N130.csv
.PHONY: bench-mixed-vs-lme4
bench-mixed-vs-lme4: install
	$(BIN)/python benchmarks/mixed_models.py --cells $(LME4_CELLS)

bench-end-to-end: install
	$(BIN)/python benchmarks/end_to_end.py --cores 2

# Design sensitivity (docs/null.md, "Design sensitivity"): the whole workflow plus the
# sweep of config sensitivity, on the default study unless CONFIG says otherwise.
.PHONY: sensitivity
sensitivity: install
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS) --config 'sensitivity={enabled: true}'
	$(BIN)/python -m mimicry.reporting.report results/report.html $(CONFIG_ARGS) --config 'sensitivity={enabled: true}'
	$(BIN)/python -m mimicry.reporting.manifest add results/report.html

# Multiverse of preprocessing pipelines (docs/null.md, "Multiverse"): the whole workflow plus
# every universe of config multiverse.axes.
.PHONY: multiverse bench-multiverse
multiverse: install
	$(BIN)/snakemake --cores $(CORES) $(CONFIG_ARGS) --config 'multiverse={enabled: true}'
	$(BIN)/python -m mimicry.reporting.report results/report.html $(CONFIG_ARGS) --config 'multiverse={enabled: true}'
	$(BIN)/python -m mimicry.reporting.manifest add results/report.html

# The multiverse's preprocessing against the single pipeline's (target: at most 3x).
bench-multiverse: install
	$(BIN)/python benchmarks/multiverse.py --cores $(CORES)

# Simulation-based calibration of the drug model (Student-t, rate deviations): 200
# studies drawn from the program's prior, fitted and ranked; results/sbc. Not in `make
# test`, which runs a small version (tests/test_sbc.py).
.PHONY: sbc
sbc: install
	$(BIN)/python -m mimicry.bayes.sbc --replicates 200 --out results/sbc

clean:
	rm -rf results logs resources .snakemake
