# Companion to "Mechanisms of Misgeneralization in Physical Sequence Modeling".
#   make figures   regenerate every figure under figures/ (default profile)
#   make test      pytest + every notebook under the smoke profile + nbval + the book's browser test
#   make book      the executed default notebooks, docs and README as a static site in build/book
#   make bench     timing benchmark against reference U-Nets (BENCH_ARGS=--quick: seconds), and
#                  the drift check's time and memory at 10^4..10^6 trajectories (bench/drift_scale.py;
#                  DRIFT_SCALE_ARGS="--sizes 10000" for a quick run; kernels smooth, neighbour, pilot)
#   make figures ARITHMETIC=native   the same in each CPU's fastest arithmetic; the default,
#                  portable, gives the same bits on Intel and AMD CPUs (paper_lib/arithmetic.py)
# Both create .venv on first use. Each notebook trains its models one per core by itself
# (paper_lib.parallel), so `make figures` keeps 2 cores busy without -j.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
NAMES := $(notdir $(NOTEBOOKS:.py=))
LIB := $(shell find paper_lib -name '*.py' | sort)
DEFAULT_NB := $(NAMES:%=build/default/%.ipynb)
SMOKE_NB := $(NAMES:%=build/smoke/%.ipynb)
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS ?= 2
# ARITHMETIC: the CPU arithmetic the notebooks run in (figures, smoke, nbval, lab). `portable`, the
# default where the CPU allows it (x86-64 with AVX2, paper_lib.arithmetic.supported), computes the
# same bits on Intel and AMD CPUs, so the committed figures reproduce there; `native`, the default
# elsewhere (ARM), lets each library pick this CPU's fastest code. paper_lib.runnb and
# `python -m paper_lib.arithmetic MODE CMD` start a process with the mode's variables; pytest leaves
# the mode to each test.
ifndef ARITHMETIC
ARITHMETIC := $(shell PYTHONPATH=. $(PYTHON) -S -m paper_lib.arithmetic default)
endif
WITH_ARITHMETIC = $(BIN)/python -m paper_lib.arithmetic $(ARITHMETIC)

.PHONY: all figures test pytest smoke nbval book booktest lab bench clean distclean setup
.DELETE_ON_ERROR:

all: figures

setup: $(STAMP)

# TORCH_INDEX: the package index torch is installed from; empty (the default) is pip's own index,
# which on Linux gives the CUDA build (gigabytes). Without a GPU:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# the reference DDPM of notebook 02 (models/reference.py), without its declared dependencies:
# they include torchvision, whose wheels would replace the pinned CPU torch; what its 1D module
# really imports (einops, ema-pytorch, accelerate) comes with the dev extra
REFERENCE_DDPM := denoising-diffusion-pytorch==2.3.4

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(REFERENCE_DDPM)
	@touch $@

# paper_lib.runnb converts the percent script with jupytext and runs it with papermill (profile
# injected) in a child process; the executed notebook is written under a temporary name and
# renamed only on success, and its wall time and peak memory are appended to
# build/<profile>/timings.csv.
define run_notebook
	$(BIN)/python -m paper_lib.runnb $< $@ -p profile $(1) --cwd notebooks
endef

figures: $(DEFAULT_NB)

build/default/%.ipynb build/smoke/%.ipynb: export PAPER_LIB_ARITHMETIC := $(ARITHMETIC)
build/default/%.ipynb: notebooks/%.py $(LIB) $(STAMP)
	$(call run_notebook,default)

# 04 and 05 read the kernel_agreement table that 03 writes for the same profile: 03 runs first
# (and a rerun of 03 reruns them). paper_lib.plots.read_table fails if the table is missing.
build/default/04_maze.ipynb build/default/05_pendulum.ipynb: build/default/03_kernel.ipynb
build/smoke/04_maze.ipynb build/smoke/05_pendulum.ipynb: build/smoke/03_kernel.ipynb
# 06 reads the denoiser t* that 03, 04 and 05 write to kernel_agreement.csv, and the U-Net's
# seed-to-seed spread that 02, 04 and 05 write to drift.csv
build/default/06_mitigation.ipynb: build/default/02_mechanism.ipynb build/default/04_maze.ipynb \
	build/default/05_pendulum.ipynb
build/smoke/06_mitigation.ipynb: build/smoke/02_mechanism.ipynb build/smoke/04_maze.ipynb \
	build/smoke/05_pendulum.ipynb

# Smoke runs keep their own cache and write figures under build/smoke/figures (see paper_lib.setup).
# Their models train in a few steps, so they train in the notebook's own process: starting worker
# processes (paper_lib.parallel) would cost more than it saves (measured: 23 s per smoke pass).
build/smoke/%.ipynb: export PAPER_LIB_CACHE := $(CURDIR)/build/smoke/cache
build/smoke/%.ipynb: export PAPER_LIB_WORKERS := 1
# and on one thread each: `make smoke` runs JOBS of them side by side, and two 2-thread processes
# on 2 cores wait on each other's threads (measured: 7.7 min for the six, against 4.0 min on one
# thread each and 6.4 min one after another on two threads)
build/smoke/%.ipynb: export OMP_NUM_THREADS := 1
build/smoke/%.ipynb: notebooks/%.py $(LIB) $(STAMP)
	$(call run_notebook,smoke)

# JOBS: processes `make test` keeps busy (one per core). pytest spreads the tests over JOBS
# workers (pytest-xdist), the smoke notebooks run JOBS at a time in the order their
# prerequisites allow, and nbval re-executes JOBS notebooks at a time (one kernel per notebook).
# A smoke notebook, and each test, runs on its own (single-threaded, mostly Python), so one
# process would leave the second core idle about half the time.
JOBS ?= 2

test: pytest smoke nbval booktest

pytest: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) tests

smoke: $(STAMP)
	$(MAKE) --no-print-directory -j$(JOBS) $(SMOKE_NB)

# nbval re-executes the smoke notebooks with an empty cache and compares the checked cells with
# the stored run: it proves the summary tables are reproducible, not merely cached.
nbval: $(SMOKE_NB)
	rm -rf build/smoke/nbval-cache
	PAPER_LIB_CACHE=$(CURDIR)/build/smoke/nbval-cache PAPER_LIB_WORKERS=1 OMP_NUM_THREADS=1 \
	    $(WITH_ARITHMETIC) $(BIN)/python -m pytest -p no:cacheprovider -n $(JOBS) --dist loadfile \
	    --nbval-lax --nbval-current-env $(SMOKE_NB)

# The book renders notebooks executed before (build/$(BOOK_PROFILE)/*.ipynb: `make figures` for the
# default profile) and never runs them; book/build.py says which are missing. Open
# build/book/index.html in a browser.
BOOK_PROFILE ?= default
book: $(STAMP)
	$(BIN)/python book/build.py --profile $(BOOK_PROFILE) --out build/book$(if $(filter-out default,$(BOOK_PROFILE)),-$(BOOK_PROFILE))

# booktest builds the smoke notebooks' book and opens it in headless Chromium (book/test_site.py):
# console errors, images, internal links, the explorer's slider. Without Chromium it is skipped.
booktest: $(SMOKE_NB)
	$(BIN)/python book/build.py --profile smoke --out build/book-smoke
	$(BIN)/python -m pytest -p no:cacheprovider book/test_site.py --site build/book-smoke -rs

lab: $(STAMP)
	$(WITH_ARITHMETIC) $(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# The reference U-Nets (denoising-diffusion-pytorch, diffusers) come with the `bench` extra; torch
# stays pinned by the project's own dependency. BENCH_ARGS: e.g. --quick or --skip-figures.
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python bench/benchmark.py $(BENCH_ARGS)
	$(BIN)/python bench/drift_scale.py $(DRIFT_SCALE_ARGS)

clean:
	rm -rf build .cache .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
