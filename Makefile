# reid_lab — the two commands a new user runs:  make tutorial   and   make test
# Everything runs inside .venv in this checkout (created on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.reid_lab-installed
# The torch build this project is tested with; override on other machines, e.g. make setup TORCH="torch torchvision"
TORCH  ?= torch==2.14.1 torchvision==0.29.1
PROFILE ?= tiny

.PHONY: setup data tutorial smoke test test-fast lab bench tiny-dino clean help

help:
	@echo "make tutorial   set up .venv, generate the synthetic data, run all notebooks (PROFILE=$(PROFILE)) into runs/$(PROFILE)/"
	@echo "make test       set up .venv, run unit tests + every notebook in the smoke profile"
	@echo "make test-fast  unit tests only (no notebooks)"
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make bench      run the CPU benchmarks (prints markdown tables)"
	@echo "make tiny-dino  the longer tiny DINO run (~40 min, 1 thread) + its 3-seed fine-tuning study (~30 min)"

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

smoke: setup
	$(BIN)/reid-lab tutorial --profile smoke

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not notebook"

# JupyterLab on notebooks/ with the .venv kernel; LAB_ARGS for more, e.g. LAB_ARGS="--no-browser --port 8890"
lab: setup
	$(BIN)/jupyter lab --notebook-dir notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

bench: setup
	@for script in benchmarks/*.py; do [ $$script = benchmarks/pretraining_effect.py ] && continue; \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The longer DINO run of reid_lab/assets/dino_vit_tiny_tiny.json (its command, re-run), copied into reid_lab/assets/
# (git-ignored, 3.8 MB) where reid_lab.zoo finds it, then the study that measures what it buys (README).
TINY_DINO := runs/tiny-dino
tiny-dino: setup
	OMP_NUM_THREADS=1 $(BIN)/reid-lab pretrain --profile tiny --arch vit_tiny --output $(TINY_DINO) --epochs 6 \
	  --base-lr 0.002 --seed 0 --keep-ratio none --set warmup_epochs=1 --set momentum_teacher=0.99 \
	  --jitter-strength 0.5 --device cpu --no-progress
	$(BIN)/python -c "from reid_lab import zoo; print(zoo.ship_backbone('$(TINY_DINO)/teacher_backbone.pth', \
	  'tiny', 'vit_tiny', zoo.provenance('tiny', 'vit_tiny')))"
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/pretraining_effect.py --init DINO=$(TINY_DINO)/teacher_backbone.pth \
	  --seeds 0 1 2 --ids 150 --epochs 12 --eval-period 3 --output $(TINY_DINO)/study

clean:
	rm -rf runs/smoke .pytest_cache
