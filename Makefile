# ProxIQA Lab: `make report` runs every notebook in the course profile (the shipped lab models, a few images),
# `make test` runs the tests, `make lab-report` rebuilds the lab report (reports/lab/) from the shipped models.
# Both set up a virtual environment and fetch the data first, so each works on a fresh clone.

PYTHON   ?= python3
VENV     ?= .venv
PROFILE  ?= course
# Where datasets are copied from (checked against sha256). Empty: download from the public URLs.
MIRROR   ?= $(wildcard ../shared/data)
# unsplash_x4 and wikipedia24 are processed derivatives that only a mirror carries.
DATASETS ?= $(if $(MIRROR),kodak wikipedia24 bsds500 unsplash_x4,kodak bsds500)

BIN := $(VENV)/bin
MIRROR_ARG := $(if $(MIRROR),--mirror $(MIRROR),)

.PHONY: setup data report answers lab-report test test-all benchmarks clean-notebooks

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

data: setup
	$(BIN)/proxiqa-lab data fetch $(DATASETS) $(MIRROR_ARG)

report: data
	$(BIN)/proxiqa-lab run-notebooks --profile $(PROFILE)

# The instructor's answer key (notebooks/answers/), after the notebooks it answers; every check must say right.
answers: report
	$(BIN)/proxiqa-lab run-notebooks --profile $(PROFILE) --notebooks notebooks/answers --out reports/$(PROFILE)/answers

lab-report: data
	$(BIN)/proxiqa-lab run-notebooks --profile lab -p TRAIN shipped

test: data
	$(BIN)/python -m pytest

test-all: data
	$(BIN)/python -m pytest -m "slow or not slow"

benchmarks: data
	$(BIN)/python benchmarks/metrics_speed.py
	$(BIN)/python benchmarks/training_speed.py
	$(BIN)/python benchmarks/rd_cache.py

clean-notebooks: setup
	$(BIN)/python -m proxiqa_lab.notebooks.hygiene --fix notebooks notebooks/answers
