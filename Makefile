# Set-up and entry points. `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= all

.PHONY: install run test lint lock clean bench-simulate reproduce-check

install: $(INSTALLED)

$(INSTALLED): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

run: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

test: lint
	$(BIN)/pytest

lock: install
	{ sed -n '1,2p' requirements.lock; $(BIN)/pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

reproduce-check: install
	$(BIN)/python -m mimicry.reproduce --configfile config/quick.yaml --cores 2

bench-simulate: install
	$(BIN)/python benchmarks/simulate.py --cores 2

clean:
	rm -rf results logs resources .snakemake
