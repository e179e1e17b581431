# ovvision — the two commands a newcomer runs are `make quickstart` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Install stamps: dependencies are keyed by requirements.txt; the package by setup.py, the C++/CUDA
# sources and the checkout path (an editable install points at one checkout).
DEPS_HASH := $(shell cat requirements.txt | sha256sum | cut -c1-16)
PKG_HASH := $(shell (cat setup.py; echo $(CURDIR); find ovvision/csrc -type f 2>/dev/null | sort | xargs cat 2>/dev/null) | sha256sum | cut -c1-16)
DEPS_STAMP := $(VENV)/.deps-$(DEPS_HASH)
PKG_STAMP := $(VENV)/.pkg-$(PKG_HASH)
TORCH_PINS := $(shell grep -E '^(torch|torchvision)==' requirements.txt)
PYTEST_ARGS ?=

.PHONY: install lint format test test-fast test-fallback quickstart web-demo build-cuda bench bench-model clean

# The web demo's browser test drives Debian's chromium through Playwright (Playwright's own
# browser download needs the network, so `playwright install` is never run).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(PKG_STAMP) $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(DEPS_STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# torch first, from the pinned versions, so no later requirement can pull another build.
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q -r requirements.txt
	rm -f $(VENV)/.deps-*
	touch $@

$(PKG_STAMP): $(DEPS_STAMP)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.pkg-*
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The tests need ovvision._C to load (tests/conftest.py stops the run if it was meant to be built
# and does not); the fallback run then checks the PyTorch references the ops use without it.
# One pytest worker per core, one thread each (torch threads on a shared core only spin). Each
# worker that needs the trained tiny CLIP waits for the one training of the run (tests/conftest.py).
test: install lint
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n auto $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-fallback

# The op tests with the extension left unloaded (tests/ops/conftest.py says what they skip).
test-fallback: install
	OVVISION_NO_EXT=1 $(PY) -m pytest tests/ops -q

# Everything except the slow training tests, for a quick local loop.
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Set-up plus the main job on OV-Shapes: data, tiny CLIP, OV-RCNN, evaluation, control, demo.
quickstart: install
	$(PY) tools/quickstart.py

# The browser demo on the quickstart's detector (run `make quickstart` first), with the ground
# mode when configs/ov_shapes/ovgrounder.yaml has been trained; ARGS="--port 8000".
GROUNDER_WEIGHTS := output/ov_shapes/ovgrounder/model_final.pth
web-demo: install
	$(PY) tools/web_demo.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \
		--weights output/quickstart/ovrcnn/model_final.pth \
		$(if $(wildcard $(GROUNDER_WEIGHTS)),--mode ground configs/ov_shapes/ovgrounder.yaml $(GROUNDER_WEIGHTS)) $(ARGS)

# Compile check of the CUDA kernels (they compile here but need a GPU to run).
# With no GPU visible torch cannot pick an architecture: default to sm_90 (H100/H200).
build-cuda: install
	CUDA_HOME=$${CUDA_HOME:-/usr/local/cuda} FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$${TORCH_CUDA_ARCH_LIST:-9.0}" $(PY) setup.py build_ext --build-temp build/cuda-tmp --build-lib build/cuda-lib

# ovvision's ops against torchvision on the same inputs, side by side (CPU; add ARGS="--device cuda").
bench: install
	$(PY) tools/benchmark_ops.py --json output/benchmark_ops.json $(ARGS)

# The whole OV-RCNN against torchvision's Mask R-CNN: inference and training steps, side by side
# (CPU, 2 threads, about 10 minutes; ARGS="--device cuda" on a GPU, tools/gpu_check.sh for all).
bench-model: install
	$(PY) tools/benchmark_model.py --json output/benchmark_model.json $(ARGS)

clean:
	rm -rf build *.egg-info ovvision/_C*.so
