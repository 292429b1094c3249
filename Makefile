# Two commands on a fresh machine: `make run` (set up + main job) and `make test` (set up + tests).
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
JOBS ?= 2
export PATH := $(BIN):$(PATH)
export SAM2_BUILD_CUDA := 0

.PHONY: setup run test lint dry-run report clean

setup: $(VENV)/.installed

# torch first: sam2 is an sdist whose build imports torch (hence --no-build-isolation).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q "torch>=2.5" "torchvision>=0.20"
	$(BIN)/pip install -q -e ".[diffusers,test]"
	$(BIN)/pip install -q --no-build-isolation "sam2>=1.1" "hydra-core>=1.3" "iopath>=0.1.10"
	touch $@

run: setup
	$(BIN)/snakemake -j$(JOBS)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/snakemake --lint

dry-run: setup
	$(BIN)/snakemake -n

report: setup
	$(BIN)/snakemake --report report.html

clean:
	rm -rf results .snakemake report.html
