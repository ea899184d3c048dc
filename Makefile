# Two entry points: `make run` opens the explorer, `make test` runs the whole suite headless.
# Both create .venv and install what they need; torch is pinned first so pip takes the
# local CPU wheel instead of resolving a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

.PHONY: run test fuzz bench venv clean xvfb

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/llmviz

# The window test needs a virtual X display; install one where apt-get can (CI runs as root).
xvfb:
	@command -v xvfb-run >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq xvfb >/dev/null) || \
	  echo "note: xvfb not installed; the window test will be skipped"; }

test: $(STAMP) xvfb
	$(BIN)/python -m pytest

# Thousands of hypothesis cases per parser of user files (make test runs a few hundred).
fuzz: $(STAMP)
	LLMVIZ_FUZZ=1 $(BIN)/python -m pytest tests/test_fuzz_parsers.py -q

bench: $(STAMP)
	$(BIN)/llmviz bench --scene stress:100000 --frames 300 --json

clean:
	rm -rf $(VENV) build *.egg-info
