# relight — make targets. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# the environment of `make test-package`: the built wheel at the lowest allowed versions
LOWEST ?= .venv-lowest
# Tests and benches never touch the network.
export HF_HUB_OFFLINE := 1
# W&B is the user's choice (offline by default, see docs/training.md); only the tests turn it off.
test test-suite test-package test-torch-lowest test-fast: export WANDB_MODE := disabled

.DEFAULT_GOAL := help

.PHONY: help install train train-gpu eval predict export-onnx sweep-ablation report wandb-sync test test-suite test-package test-torch-lowest wheel lock test-fast lint format bench bench-gpu profile profile-gpu bench-data data check-data clean

help:  ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(BIN)/relight-convert: setup.cfg pyproject.toml setup.py constraints/locked.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints/locked.txt -e '.[dev]'
	@touch $@

install: $(BIN)/relight-convert  ## create .venv: relight (editable) + dev extras at the locked versions (constraints/locked.txt)

train: install  ## the main job: mini-VIDIT (rendered if missing) -> train S3Net on CPU -> evaluate vs identity
	$(BIN)/relight-train experiment=minividit_cpu $(ARGS)

train-gpu: install  ## the GPU main job: the paper's S3Net on mini-VIDIT, one CUDA GPU, <= 10 min of training
	$(BIN)/relight-train experiment=minividit_gpu $(ARGS)

eval: install  ## evaluate the latest run's best checkpoint (or CKPT=path), at 128² on the mini-VIDIT validation pairs
	$(BIN)/relight-eval ckpt_path=$${CKPT:-logs/train/latest/checkpoints/best.ckpt} image_size=128 $(ARGS)

predict: install  ## relight the mini-VIDIT validation pairs with the latest best checkpoint (+ metrics, submission zip)
	$(BIN)/relight-predict --pairs $${PAIRS:-data/minividit/validation} --checkpoint $${CKPT:-logs/train/latest/checkpoints/best.ckpt} --output $${OUT:-logs/predict} --submission $(ARGS)

export-onnx: install  ## ONNX export of the latest best checkpoint, checked in onnxruntime
	$(BIN)/relight-export --checkpoint $${CKPT:-logs/train/latest/checkpoints/best.ckpt} --output $${OUT:-logs/export/s3net.onnx} --verify $(ARGS)

ABLATIONS ?= full,no_attention,no_enhancement,ssim,no_depth
sweep-ablation: install  ## the ablation grid on mini-VIDIT (one multirun job per variant), then the table (also when a job failed: it lists it; the sweep's status is kept)
	$(BIN)/relight-train -m experiment=minividit_ablation ablation=$(ABLATIONS) $(ARGS); \
	trained=$$?; $(MAKE) --no-print-directory report && exit $$trained

report: install  ## table + chart of the latest sweep (logs/train/multiruns/latest, or SWEEP=logs/train/multiruns/<time>)
	$(BIN)/relight-report $${SWEEP:-logs/train/multiruns/latest}

wandb-sync: install  ## upload the offline W&B runs of a sweep (SWEEP=logs/train/multiruns/<time>), or of every run under logs/
	$(BIN)/relight-wandb sync $${SWEEP:-logs} $(ARGS)

test: test-suite test-package  ## what CI runs: the whole suite, then the built wheel at the lowest dependency versions

test-suite: install  ## the whole test suite in .venv (locked versions, editable install)
	$(BIN)/pytest -q --durations=20

wheel: install  ## build dist/relight-<version>-py3-none-any.whl (configs included)
	rm -rf dist build
	$(PY) -m pip wheel --quiet --no-deps . -w dist

$(LOWEST)/bin/python: constraints/lowest.txt
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip

test-package: wheel $(LOWEST)/bin/python  ## the wheel installed non-editable at the lowest allowed versions (constraints/lowest.txt): install checks + fast tests
	$(LOWEST)/bin/pip install --quiet -c constraints/lowest.txt "$$(ls dist/relight-*.whl)[dev]"
	$(LOWEST)/bin/pip install --quiet --force-reinstall --no-deps dist/relight-*.whl
	RELIGHT_WHEEL="$$(ls $(CURDIR)/dist/relight-*.whl)" $(LOWEST)/bin/pytest -q -m "not slow" -p no:cacheprovider --durations=20

# the lowest torch setup.cfg allows, that of the GPU machine: a CUDA build from PyPI (~6 GB in
# the environment; it runs on the CPU too). Not in CI: the download and the suite take ~10 min.
TORCH_LOWEST ?= torch==2.11.0 torchvision==0.26.0
TORCH_LOWEST_ENV ?= .venv-torch-lowest
test-torch-lowest:  ## the whole suite at the lowest allowed torch (TORCH_LOWEST), the rest at the locked versions
	rm -rf $(TORCH_LOWEST_ENV)
	$(PYTHON) -m venv $(TORCH_LOWEST_ENV)
	$(TORCH_LOWEST_ENV)/bin/pip install --quiet --upgrade pip
	grep -vE '^(torch|torchvision|triton|nvidia-[a-z0-9-]+|cuda-[a-z-]+)==' constraints/locked.txt > $(TORCH_LOWEST_ENV)/constraints.txt
	$(TORCH_LOWEST_ENV)/bin/pip install --quiet -c $(TORCH_LOWEST_ENV)/constraints.txt $(TORCH_LOWEST) -e '.[dev]'
	PATH="$(CURDIR)/$(TORCH_LOWEST_ENV)/bin:$$PATH" $(TORCH_LOWEST_ENV)/bin/pytest -q -p no:cacheprovider

test-fast: install  ## run the test suite without the slow tests
	$(BIN)/pytest -q -m "not slow"

lint: install  ## ruff check + format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install  ## apply ruff's formatting and fixes
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

bench: install  ## the benchmark table on this CPU (~10 min): inference per mode, training steps, accuracy per mode, data loader -> benchmarks/cpu.{json,md}
	$(BIN)/relight-bench suite --profile cpu --output benchmarks/cpu.json --table benchmarks/cpu.md $(ARGS)

bench-gpu: install  ## the same on one CUDA GPU -> benchmarks/gpu.{json,md}; ARGS=--resume continues a killed run
	$(BIN)/relight-bench suite --profile gpu --output benchmarks/gpu.json --table benchmarks/gpu.md $(ARGS)

profile: install  ## one training step (256², batch 3, fp32) under torch.profiler on this CPU -> benchmarks/profile-cpu.{json,md}
	$(BIN)/relight-bench profile --device cpu --size 256 --output benchmarks/profile-cpu.json --table benchmarks/profile-cpu.md $(ARGS)

profile-gpu: install  ## the paper's step (1024², batch 3, bf16-mixed, channels_last) under torch.profiler on one GPU -> benchmarks/profile-gpu.{json,md}
	$(BIN)/relight-bench profile --device cuda --size 1024 --precision bf16-mixed --channels-last --output benchmarks/profile-gpu.json --table benchmarks/profile-gpu.md $(ARGS)

bench-data: install  ## data-loader items/s at 1024² and 256², with/without cache, 0 and 2 workers
	$(BIN)/relight-bench data --sizes 1024 256 --workers 0 2 --output benchmarks/data.json

data: install  ## render the mini-VIDIT (the embedded default dataset) into data/minividit
	$(BIN)/relight-minividit data/minividit

DATA ?= data/minividit
check-data: install  ## decode every file of DATA (default data/minividit; a train or pairs folder, or one holding them) and list every problem
	$(BIN)/relight-data check $(DATA) $(ARGS)

TORCH_LOCK ?= torch==2.14.1 torchvision==0.29.1
lock:  ## re-resolve the dev environment at the newest allowed versions into constraints/locked.txt
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet $(TORCH_LOCK) -e '.[dev]'
	{ head -n 2 constraints/locked.txt; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^relight'; } > constraints/locked.new
	mv constraints/locked.new constraints/locked.txt
	rm -rf .venv-lock

clean:  ## remove build artefacts (keeps .venv; removes the test-package and test-torch-lowest environments)
	rm -rf build dist src/*.egg-info .pytest_cache .ruff_cache $(LOWEST) $(TORCH_LOWEST_ENV)
