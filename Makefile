# Two commands: `make demo` (the main job) and `make test` (what CI runs).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Data: ../shared/data beside the clone when present (tests, CI), else ./data.
SHARED_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data))
# Quiet TensorFlow's C++ logging (see ../shared/ENVIRONMENT_NOTES.md).
export TF_CPP_MIN_LOG_LEVEL := 2
export SIAMESE_TF_DATA_DIR ?= $(SHARED_DATA)

.PHONY: setup demo test lint unit notebooks clean

$(VENV)/.installed: requirements.txt scripts/setup_system.sh
	bash scripts/setup_system.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m siamese_tf demo --data-dir "$(SIAMESE_TF_DATA_DIR)"

# The package, tests, benchmarks and the notebooks' .py sources, with the rules in pyproject.toml.
lint: setup
	$(PY) -m ruff check siamese_tf tests benchmarks notebooks

unit: setup
	$(PY) -m pytest -q tests

notebooks: setup
	SIAMESE_TF_SMOKE=1 $(PY) -m pytest -q --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks

test: setup
	$(PY) -m ruff check siamese_tf tests benchmarks notebooks
	$(PY) -m pytest -q tests
	SIAMESE_TF_SMOKE=1 $(PY) -m pytest -q --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks

clean:
	rm -rf $(VENV) reports/* models/*
