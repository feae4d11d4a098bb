# facebench: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# PyPI's Linux torch wheel is the CUDA build (GBs of nvidia-* packages); the CPU index holds the
# +cpu build, which pip prefers for ==$(TORCH_VERSION) (a +cpu wheel already on the pip path wins
# too; an unreachable index only costs a few retries: torch alone is fetched there, its
# dependencies from the default index). On a GPU machine set TORCH_INDEX to a CUDA index, or to
# nothing for PyPI's default build.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
DATASET ?= demo_diverse
SOURCE ?=
RECIPE ?=
JOBS ?= 2
# Several processes/nodes for `make bench` (README "Scaling"): NPROC per node under torchrun;
# multi-node: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT, or RDZV_ENDPOINT (c10d host:port).
NPROC ?= 1
LAUNCH = --nproc $(NPROC) $(foreach v,NNODES NODE_RANK MASTER_ADDR MASTER_PORT RDZV_ENDPOINT,$(if $($(v)),--$(subst _,-,$(shell echo $(v) | tr A-Z a-z)) $($(v)),))
BENCH := $(BIN)/bench

.PHONY: help setup demo test test-fast bench reproduce report diagnose lint format speed

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python ## create .venv: pinned CPU torch first, then the project (editable) + dev tools
	@# torch is pinned and installed first: an unpinned torch from a dependency pulls GBs of CUDA
	$(BIN)/python -c "import torch, sys; sys.exit(0 if tuple(map(int, torch.__version__.split('+')[0].split('.')[:2])) >= (2, 4) else 1)" 2>/dev/null \
		|| { $(BIN)/pip install -q --no-deps torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
		     && $(BIN)/pip install -q torch==$(TORCH_VERSION); }
	$(BIN)/pip install -q -e '.[dev]'

demo: ## generate the demo sets, train + evaluate + diagnose both demo training sets, build the leaderboard
	$(BENCH) synth --all
	@# The two demo sets run side by side, one core and one torch thread each: on 2 cores this
	@# beats two 2-thread runs one after the other (docs/PERFORMANCE.md, "The first run").
	$(MAKE) --no-print-directory -j2 -Otarget demo-consistent demo-diverse
	$(BENCH) ijb --demo --target ijbc --model runs/demo_diverse/demo_cpu-seed0/final.pt
	$(BENCH) report

demo-%: # one demo set: bench bench (prepare, check, train, evaluate) then diagnose
	OMP_NUM_THREADS=1 $(BENCH) bench demo_$* --workers 1
	OMP_NUM_THREADS=1 $(BENCH) diagnose demo_$* --per-identity 4 --workers 1 --model runs/demo_$*/demo_cpu-seed0/final.pt

bench: ## prepare + check + train + eval one set: make bench DATASET=uiface_0.5m [RECIPE=ir50_arcface] [NPROC=8 [NNODES=2 NODE_RANK=0 MASTER_ADDR=host]]
	$(BENCH) bench $(DATASET) $(if $(RECIPE),--recipe $(RECIPE),) $(LAUNCH)

reproduce: ## train a published table's sets, 3 seeds, then report: make reproduce SOURCE=dcface_paper [RECIPE=fixed]
	$(BENCH) reproduce $(SOURCE) $(if $(RECIPE),--recipe $(RECIPE),) $(LAUNCH)
	$(BENCH) report

report: ## rebuild reports/ from results/**/*.json
	$(BENCH) report

diagnose: ## diversity/separability/leakage diagnostics: make diagnose DATASET=name MODEL=path
	$(BENCH) diagnose $(DATASET) --model $(MODEL)

speed: ## speed benchmark (GPU figures in docs/PERFORMANCE.md)
	$(BENCH) speed

# The GPU box has torch, torchvision, numpy, Pillow, onnxruntime. Our other pure-Python
# dependencies are unpacked here and travel with the working tree; C extensions in them
# (PyYAML, msgpack, MarkupSafe) fall back to their pure-Python code on another Python version.
GPU_DEPS := pyyaml msgpack tqdm jinja2 markupsafe pytest pluggy iniconfig packaging
gpu-deps: ## unpack the proof's pure-Python dependencies into .gpu_deps/ (carry it to the GPU box)
	rm -rf .gpu_deps && mkdir -p .gpu_deps/wheels
	$(BIN)/pip download -q --no-deps --only-binary=:all: -d .gpu_deps/wheels $(GPU_DEPS)
	cd .gpu_deps && for wheel in wheels/*.whl; do ../$(BIN)/python -m zipfile -e $$wheel .; done
	rm -rf .gpu_deps/wheels

gpu-proof: ## the GPU proof (benchmarks/gpu_proof.sh): environment, GPU tests, speed, real training
	bash benchmarks/gpu_proof.sh

test: ## run the test suite (what CI runs)
	$(BIN)/python -m pytest -n $(JOBS) -q

test-fast: ## tests without the slow end-to-end ones
	$(BIN)/python -m pytest -n $(JOBS) -q -m "not slow"

lint: ## ruff check + format check + the import-direction contract (import-linter)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: ## ruff format + autofix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .
