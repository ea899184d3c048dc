# Two entry points: `make run` opens the explorer, `make test` runs the whole suite headless.
# Both create .venv and install what they need; torch is pinned first so pip takes the
# local CPU wheel instead of resolving a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | cksum | cut -d' ' -f1)

.PHONY: run test fuzz bench docs venv clean xvfb vulkan llama-server

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/llmviz

# The window tests need a virtual X display, the clipboard test a reader (xclip) and the wgpu window's click test
# X's test extension (libxtst6); install them where apt-get can (CI runs as root).
xvfb:
	@{ command -v xvfb-run && command -v xclip && ldconfig -p | grep -q libXtst.so.6; } >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq xvfb xclip libxtst6 >/dev/null) || \
	  echo "note: xvfb, xclip or libxtst6 not installed; the window tests that need them will be skipped"; }

# llama-cpp-python's OpenAI-compatible server, for tests/test_stream_servers.py: built once from its sdist with only
# what the server needs (no examples, tools, tests, llava/mtmd, web UI; portable CPU code). Measured on this 2-core
# machine: 9.3 min of CPU (24 min of wall time while five other builds shared the cores); pip keeps the wheel, so a
# new venv reinstalls it in seconds. A failed build is a note, and those tests skip with the reason.
LLAMA_CPP := llama_cpp_python==0.3.36
LLAMA_STAMP := $(VENV)/.llama-cpp-0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
	-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF

$(LLAMA_STAMP): $(STAMP)
	@command -v g++ >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq g++ >/dev/null); } || true
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install -q '$(LLAMA_CPP)' \
	  'llama_cpp_python[server]' || echo "note: llama-cpp-python did not build; its stream tests will be skipped"
	touch $@

llama-server: $(LLAMA_STAMP)

# wgpu's tests and `llmviz doctor`'s compute check need a Vulkan driver (an ICD file names one): Mesa's software
# lavapipe where apt-get can; without any, those tests skip with the reason.
vulkan:
	@ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | grep -q '\.json$$' || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && apt-get install -y -qq mesa-vulkan-drivers >/dev/null) || \
	  echo "note: mesa-vulkan-drivers not installed; the wgpu tests will be skipped where wgpu finds no adapter"; }

test: $(STAMP) xvfb vulkan llama-server
	$(BIN)/python -m pytest

# Thousands of hypothesis cases per parser of user files (make test runs a few hundred).
fuzz: $(STAMP)
	LLMVIZ_FUZZ=1 $(BIN)/python -m pytest tests/test_fuzz_parsers.py -q

# docs/: the pages read off the code (keys, commands, the frame's systems, modules, chapter links; tests/test_docs.py
# fails when a committed one is stale), then the API reference from the docstrings into docs/api/ (pdoc, not committed).
docs: $(STAMP)
	$(BIN)/python -m llmviz.scenes.docs_reference docs
	$(BIN)/pdoc --docformat restructuredtext --no-show-source -o docs/api llmviz.engine llmviz.models llmviz.scenes llmviz.common
	@echo "API reference: docs/api/index.html"

bench: $(STAMP)
	$(BIN)/llmviz bench --scene stress:100000 --frames 300 --json

clean:
	rm -rf $(VENV) build *.egg-info
