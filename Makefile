# reid_lab — the two commands a new user runs:  make tutorial   and   make test
# Everything runs inside .venv in this checkout (created on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.reid_lab-installed
# The torch build this project is tested with; override on other machines, e.g. make setup TORCH="torch torchvision"
TORCH  ?= torch==2.14.1 torchvision==0.29.1
PROFILE ?= tiny

.PHONY: setup data tutorial site smoke test test-fast test-full lab bench course course-usl gpu-check gpu-wheels clean help

help:
	@echo "make tutorial   set up .venv, generate the synthetic data, run all notebooks (PROFILE=$(PROFILE)) into runs/$(PROFILE)/"
	@echo "make site       render the executed notebooks of runs/$(PROFILE)/ as HTML pages: runs/site/$(PROFILE)/index.html"
	@echo "make test       set up .venv, run unit tests + every notebook in the smoke profile"
	@echo "make test-fast  unit tests only (no notebooks)"
	@echo "make test-full  the full profile's dry run: docs/full_profile.md + all notebooks, --dry-run on a fixture world"
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make bench      run the CPU benchmarks (prints markdown tables)"
	@echo "make course     rebuild the course checkpoints of reid_lab/assets/ (longer DINO runs + 3-seed study; CPU hours)"
	@echo "make gpu-check  on a GPU server: CUDA dry run, GPU benchmarks, course DINO; <= 9 min (DEVICE=cpu: the rehearsal)"
	@echo "make course-usl rebuild the USL/UDA course record of reid_lab/assets/ (multi-seed USL and UDA runs; ~1 h)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

data: setup
	$(BIN)/reid-lab synth --profile $(PROFILE)

# ARGS: extra tutorial flags, e.g. ARGS="--force", ARGS="--only 03,04", ARGS="--update-readme" (README results block)
tutorial: setup
	$(BIN)/reid-lab tutorial --profile $(PROFILE) $(ARGS)

# The executed notebooks of runs/$(PROFILE)/ (outputs and figures) as a static site: runs/site/$(PROFILE)/index.html
site: setup
	$(BIN)/reid-lab site --profile $(PROFILE) $(ARGS)

smoke: setup
	$(BIN)/reid-lab tutorial --profile smoke

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not notebook"

# The full profile's dry run (issue 12): every command of docs/full_profile.md (torchrun as 2 gloo CPU processes) and
# every notebook with --dry-run on a real-format fixture world in a temporary folder. ARGS: e.g. ARGS="--n 1 --keep DIR"
test-full: setup
	OMP_NUM_THREADS=1 $(BIN)/python scripts/full_dry_run.py $(ARGS)

# JupyterLab on notebooks/ with the .venv kernel; LAB_ARGS for more, e.g. LAB_ARGS="--no-browser --port 8890"
lab: setup
	$(BIN)/jupyter lab --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

bench: setup
	@for script in benchmarks/*.py; do case $$script in benchmarks/pretraining_effect.py|benchmarks/permuted_control.py) continue;; esac; \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Course checkpoints (reid_lab/assets/, issue 11): the longer tiny DINO runs (ICS and plain), the BN-statistics
# control and the 3-seed fine-tuning study, shipped as float16 with provenance. Resumable; CPU by default,
# ARGS="--device cuda" on a GPU. Parts can run in parallel processes: ARGS="--stage study --inits DINO+ICS --seeds 0".
COURSE := runs/course/tiny
course: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m reid_lab.course --profile tiny --output $(COURSE) --update-readme $(ARGS)

# USL/UDA course record (reid_lab/assets/usl_course_tiny.json, issue 22): USL from DINO+ICS (3 seeds), its oracle and
# good-start controls, random ICS, and UDA of the ICS model in both directions (3 seeds). About an hour of CPU per
# 2 cores; resumable; parts in parallel: ARGS="--runs usl_dino_ics --seeds 1 --no-ship", then a final call ships.
course-usl: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m reid_lab.usl.course --profile tiny --output $(COURSE)/usl --update-readme $(ARGS)

# Check a GPU server in one command (issue 18): the full profile's dry run on CUDA, GPU benchmarks and the course
# DINO pre-training for the rest of 9 minutes; report in $(OUT) (report.md, report.json, the course checkpoint).
# Needs no .venv: on a bare GPU machine it uses the system python3. DEVICE=cpu is the ~3-min rehearsal `make test`
# runs. ARGS: e.g. ARGS="--course-resume runs/gpu_check_before" (continue an earlier report's course run).
DEVICE ?= cuda
OUT    ?= runs/gpu_check
GPU_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
gpu-check:
	$(GPU_PYTHON) scripts/gpu_check.py --device $(DEVICE) --out $(OUT) $(ARGS)

# Wheels for a GPU machine without internet (issue 18): papermill + a Jupyter kernel (so gpu-check runs a notebook
# through papermill) and kornia, for Python $(WHEEL_PY) on x86-64 Linux, into .whl/ (git-ignored; copy it along).
WHEEL_PY ?= 3.12
WHEEL_TAGS = --only-binary=:all: --python-version $(WHEEL_PY) --implementation cp --platform manylinux_2_28_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64
gpu-wheels: setup
	$(BIN)/python -m pip download -q $(WHEEL_TAGS) -d .whl papermill ipykernel
	$(BIN)/python -m pip download -q $(WHEEL_TAGS) --no-deps -d .whl kornia kornia_rs  # not its torch
	@du -sh .whl

clean:
	rm -rf runs/smoke .pytest_cache
