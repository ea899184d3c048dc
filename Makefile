# Two entry points: `make run` opens the explorer, `make test` runs the whole suite headless.
# Both create .venv and install what they need; torch is pinned first so pip takes the
# local CPU wheel instead of resolving a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

.PHONY: run test bench venv clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/llmviz

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/llmviz bench --scene stress:100000 --frames 300 --json

clean:
	rm -rf $(VENV) build *.egg-info
