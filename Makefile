# sysgym: every target creates .venv and installs the project on first use.
#   make demo   train PPO on a DeepRM variant, compare with heuristics, print a table, save a plot
#   make test   the test suite
#   make bench  throughput tables (steps/s) and baseline benchmarks
#   make lint   ruff
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
BUILT := $(VENV)/.built
KERNELS := $(wildcard cython_core/*.pyx cython_core/*.pxd)

.PHONY: demo test bench lint build clean

$(INSTALLED): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "setuptools>=64" "Cython>=3.0" "numpy>=2.0" wheel
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet --no-build-isolation -e ".[agents,dev]"
	touch $(INSTALLED) $(BUILT)

# Rebuild the kernels in place when a .pyx/.pxd changes (pip's editable install built them once).
$(BUILT): $(INSTALLED) $(KERNELS) setup.py
	$(PY) setup.py --quiet build_ext --inplace -j 2
	touch $(BUILT)

build: $(BUILT)

demo: $(BUILT)
	$(PY) -m sysgym.demo

test: $(BUILT)
	$(PY) -m pytest -q -n 2

bench: $(BUILT)
	$(PY) -m benchmarks

lint: $(INSTALLED)
	$(PY) -m ruff check sysgym envs agents cython_core tests benchmarks traces

clean:
	rm -rf build dist *.egg-info $(VENV) cython_core/*.c cython_core/*.so .pytest_cache
