# sysgym: every target creates .venv and installs the project on first use.
#   make demo   train PPO on a DeepRM variant, compare with heuristics, print a table, save a plot
#   make test   the test suite, then the RLlib tests and the contract tests under gymnasium 1.2.2 in .venv-rllib
#   make bench  throughput tables (steps/s) and baseline benchmarks
#   make lint   ruff
#   make datasets  the documented offline datasets (Minari) into datasets/, their table into benchmarks/results/datasets/
#   make docs   the documentation site into site/ (strict); make docs-check opens it in headless Chromium
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
BUILT := $(VENV)/.built
KERNELS := $(wildcard cython_core/*.pyx cython_core/*.pxd)

.PHONY: demo test test-rllib bench bench-rllib lint build clean docs docs-check datasets

$(INSTALLED): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "setuptools>=77" "Cython>=3.0" "numpy>=2.0" wheel
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet --no-build-isolation -e ".[agents,dev,datasets]"
	touch $(INSTALLED) $(BUILT)

# Rebuild the kernels in place when a .pyx/.pxd changes (pip's editable install built them once).
$(BUILT): $(INSTALLED) $(KERNELS) setup.py
	$(PY) setup.py --quiet build_ext --inplace -j 2
	touch $(BUILT)

build: $(BUILT)

demo: $(BUILT)
	$(PY) -m sysgym.demo

test: $(BUILT)
	$(PY) -m pytest -q -n 2 --ignore=tests/integrations
	$(MAKE) --no-print-directory test-rllib

# Ray RLlib pins gymnasium==1.2.2 (our floor), so it lives in a second venv, created on first use:
# there run tests/integrations/ (RLlib) and the contract tests (the floor is tested, not assumed).
# torch is installed first, pinned, so that pip never resolves a CUDA build for ray. The kernels are
# the ones built in place for .venv (same interpreter and numpy ABI): SYSGYM_KERNELS=none makes the
# editable install skip compiling them again. SYSGYM_REQUIRE_RAY=1 turns a missing ray into a
# failure instead of the skip the RLlib tests take where ray is absent.
RLLIB_VENV := .venv-rllib
RPY := $(RLLIB_VENV)/bin/python
RLLIB_INSTALLED := $(RLLIB_VENV)/.installed

$(RLLIB_INSTALLED): pyproject.toml setup.py | $(BUILT)
	test -x $(RPY) || $(PYTHON) -m venv $(RLLIB_VENV)
	$(RPY) -m pip install --quiet --upgrade pip
	$(RPY) -m pip install --quiet "setuptools>=77" "Cython>=3.0" "numpy>=2.0" wheel
	$(RPY) -m pip install --quiet "torch==2.13.0"
	SYSGYM_KERNELS=none $(RPY) -m pip install --quiet --no-build-isolation -e ".[rllib]" "pytest>=7"
	touch $(RLLIB_INSTALLED)

test-rllib: $(BUILT) $(RLLIB_INSTALLED)
	@$(RPY) -c "import ray.rllib, torch" || { echo "$(RLLIB_VENV) cannot import ray.rllib/torch: rm -rf $(RLLIB_VENV) and run make test again" >&2; exit 1; }
	@$(RPY) -c "import importlib, pathlib; [importlib.import_module('sysgym.cython_core.' + p.stem) for p in sorted(pathlib.Path('cython_core').glob('*.pyx'))]" || { echo "the in-place kernels do not load in $(RLLIB_VENV)" >&2; exit 1; }
	SYSGYM_REQUIRE_RAY=1 RAY_USAGE_STATS_ENABLED=0 $(RPY) -m pytest -q -p no:cacheprovider tests/test_contract.py tests/integrations

bench: $(BUILT)
	$(PY) -m benchmarks

# RLlib sampling throughput (1 and 2 env runners, sync vs vector_entry_point), in .venv-rllib; then
# both engines' time to the heuristics' scores, interleaved, RLlib run in .venv-rllib (up to ~35 min;
# writes benchmarks/results/rllib/time_to_target/ as it goes, --resume continues it).
bench-rllib: $(BUILT) $(RLLIB_INSTALLED)
	RAY_USAGE_STATS_ENABLED=0 $(RPY) -m benchmarks.bench_rllib
	RAY_USAGE_STATS_ENABLED=0 $(PY) -m benchmarks.time_to_target --trainers sysgym,rllib --seeds 1 --cap-s 600 \
		--out benchmarks/results/rllib/time_to_target

# The documented offline datasets per family (issue #25): built, not committed (datasets/ is gitignored).
datasets: $(BUILT)
	$(PY) -m benchmarks.bench_datasets --build datasets

lint: $(INSTALLED)
	$(PY) -m ruff check sysgym envs agents cython_core tests benchmarks traces

# The docs site: the tools of the `docs` extra in pyproject.toml go into .venv on first use (read
# from pyproject.toml, so that the editable install and its kernels are left as they are); the
# episode GIFs are remade when a renderer changes; mkdocs builds strictly (docs/hooks.py writes the
# environment pages from the code first). docs-check installs Debian's chromium and chromedriver
# when they are missing (CI runs as root) and opens every page (docs/check_site.py).
DOCS_INSTALLED := $(VENV)/.docs-installed
MEDIA := docs/media/.made

$(DOCS_INSTALLED): $(INSTALLED) pyproject.toml
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['docs']))" > $(VENV)/docs-requirements.txt
	$(PIP) install --quiet -r $(VENV)/docs-requirements.txt
	touch $(DOCS_INSTALLED)

$(MEDIA): $(BUILT) $(DOCS_INSTALLED) docs/make_media.py envs/frame_text.py $(wildcard envs/*/render.py)
	$(PY) docs/make_media.py
	touch $(MEDIA)

docs: $(BUILT) $(DOCS_INSTALLED) $(MEDIA)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

docs-check: docs
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	$(PY) docs/check_site.py

clean:
	rm -rf build dist *.egg-info $(VENV) $(RLLIB_VENV) cython_core/*.c cython_core/*.so .pytest_cache site docs/media docs/envs
