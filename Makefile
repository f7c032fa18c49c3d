# Every target wraps the `burnscan` command line or pytest; the virtual environment is
# created on first use, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
AOI ?= ogota
FUZZ_SECONDS ?= 600
STAMP := $(VENV)/.installed

.PHONY: detect search test test-fast bench bench-perf fuzz browser-test aois clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# AOI=all runs every AOI of the registry in parallel on a local Dask cluster.
detect: $(STAMP)
	$(BIN)/burnscan detect $(if $(filter all,$(AOI)),--all,$(AOI))

# The AOI's whole search_area, chunk by chunk; clusters ranked settlement-like first (SIMULATED box without scenes).
search: $(STAMP)
	$(BIN)/burnscan search $(AOI)

test: $(STAMP)
	$(BIN)/python -m pytest

# The quick subset: every test but those marked slow (over ~2 s each, or needing the session's small run); under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

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
