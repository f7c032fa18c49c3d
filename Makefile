# Every target wraps the `burnscan` command line or pytest; the virtual environment is
# created on first use from requirements.lock (exact versions and hashes, every extra), so a
# fresh clone needs only Python 3.11 and make, and two machines on one commit get the same packages.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AOI ?= ogota
FUZZ_SECONDS ?= 600
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# The tool that writes the lock, pinned so that the same pyproject.toml gives the same lock.
PIP_TOOLS := pip-tools==7.5.2
# The lock pins wheels for CPython 3.11 on Linux x86_64: anything else is told so before pip fails on a hash.
LOCK_PLATFORM := import platform, sys; sys.exit(None if (sys.version_info[:2], sys.platform, platform.machine()) == ((3, 11), "linux", "x86_64") else f"$(LOCK) is for CPython 3.11 on Linux x86_64, not Python {platform.python_version()} on {sys.platform} {platform.machine()}: run make with PYTHON=python3.11 on such a machine, or install without the lock: pip install -e .[all]")

# Python keeps each module's compiled bytecode (in __pycache__/, ignored by git) even where the environment asks it
# not to (PYTHONDONTWRITEBYTECODE, common in containers): otherwise every command, test worker and command a test
# starts compiles again each module whose bytecode is missing or older than its source (in a working checkout: a
# worker's collection 13 s against 7 s; `burnscan detect ogota` warm 10.4 s against 8.8 s; a fresh clone's
# `make test` shows no difference beyond the machine's drift). The install compiles the package once, so that
# `burnscan` started outside make reads it too.
export PYTHONDONTWRITEBYTECODE =

.PHONY: detect search test test-fast lint bench bench-perf fuzz browser-test aois clean-venv lock

# Installed from the lock alone (--require-hashes: a package that is not pinned with its hash is refused),
# then burnscan itself without resolving anything again, built with the lock's setuptools.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c '$(LOCK_PLATFORM)'
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -m compileall -q pipeline
	@touch $(STAMP)

# Refresh requirements.lock after a change to pyproject.toml, in a throwaway venv: pins that still satisfy
# pyproject.toml are kept; `make lock UPGRADE=1` moves every package to its newest release.
lock:
	@$(PYTHON) -c '$(LOCK_PLATFORM)'
	set -e; tools=$$(mktemp -d); trap 'rm -rf "$$tools"' EXIT; \
	$(PYTHON) -m venv "$$tools"; \
	"$$tools/bin/python" -m pip install --quiet '$(PIP_TOOLS)'; \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --all-build-deps \
	    --extra batch --extra fetch --extra test --strip-extras --no-emit-index-url --no-emit-find-links \
	    $(if $(UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml; \
	{ echo "# Exact versions and SHA-256 hashes of every package burnscan installs (every extra, and the build"; \
	  echo "# backend), for CPython 3.11 on Linux x86_64. make installs from it; make lock refreshes it."; \
	  cat $(LOCK); } > "$$tools/lock" && cp "$$tools/lock" $(LOCK)

# AOI=all runs every AOI of the registry in parallel on a local Dask cluster.
detect: $(STAMP)
	$(BIN)/burnscan detect $(if $(filter all,$(AOI)),--all,$(AOI))

# The AOI's whole search_area, chunk by chunk; clusters ranked settlement-like first (SIMULATED box without scenes).
search: $(STAMP)
	$(BIN)/burnscan search $(AOI)

# One worker per core (pytest-xdist): each test file's tests share a worker, fixtures as in a serial run; inside
# a worker, tests run their work in their own process (BURNSCAN_NO_FORK, tests/conftest.py) but for those marked forks.
# Files are handed out in the order tests/conftest.py gives (the longest first), not by how many tests they hold.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

# The quick subset: every test but those marked slow (over ~2 s each, or needing the session's small run); under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The rules in pyproject.toml's [tool.ruff] (undefined and unused names, statement errors, mutable defaults).
lint: $(STAMP)
	$(BIN)/ruff check pipeline tests

bench: $(STAMP)
	$(BIN)/burnscan bench --aoi $(AOI)

# Wall time, CPU time and peak memory: pipeline vs decode floor vs naive, on generated tile-sized pairs.
bench-perf: $(STAMP)
	$(BIN)/burnscan bench-perf

# Random and mutated scene files, STAC items, AOI files and run manifests for FUZZ_SECONDS; inputs that break burnscan are kept in out/fuzz/.
fuzz: $(STAMP)
	$(BIN)/python tests/fuzz_inputs.py --seconds $(FUZZ_SECONDS) --out out/fuzz

# report.html in a real headless browser: Debian's chromium (installed here if missing; needs root and apt).
browser-test: $(STAMP)
	@command -v chromium >/dev/null || apt-get install -y --no-install-recommends chromium
	$(BIN)/python -m pytest tests/test_html_report.py

aois: $(STAMP)
	$(BIN)/burnscan aois

clean-venv:
	rm -rf $(VENV)
