# Two commands on a fresh machine: `make run` (set up + main job) and `make test` (set up + tests).
VENV ?= .venv
PYTHON ?= python3
BIN := $(abspath $(VENV))/bin
JOBS ?= 2
export PATH := $(BIN):$(PATH)
export SAM2_BUILD_CUDA := 0

# The lock: every package `make setup` installs (core + extras diffusers, ui, test), pinned with
# sha256 hashes. pyproject.toml keeps its ranges for people who install the library themselves.
LOCK := requirements/lock.txt
# The lock tool (uv) lives in its own venv (build/ is git-ignored), never in the project's.
LOCK_VENV ?= build/lock-tools
LOCK_ARGS ?=

.PHONY: setup browser lock run test lint dry-run report clean

setup: $(VENV)/.installed browser

# Three hash-checked pip calls (--require-hashes), each on a slice of the one lock file:
#   1. pip itself, so the same installer does the rest everywhere;
#   2. every pinned package but sam2;
#   3. sam2, an sdist whose build imports torch: built against step 2's torch (--no-build-isolation).
# Then the project itself, editable and without dependencies (all of them are in the lock).
# A slice: a requirement line starts with its name; its --hash and '# via' lines are indented.
$(VENV)/.installed: $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	awk '/^[A-Za-z0-9]/ { keep = /^pip==/ } keep' $(LOCK) > $(VENV)/lock-pip.txt
	awk '/^[A-Za-z0-9]/ { keep = !/^sam2==/ } keep' $(LOCK) > $(VENV)/lock-main.txt
	awk '/^[A-Za-z0-9]/ { keep = /^sam2==/ } keep' $(LOCK) > $(VENV)/lock-sam2.txt
	$(BIN)/pip install -q --require-hashes --no-deps -r $(VENV)/lock-pip.txt
	$(BIN)/pip install -q --require-hashes -r $(VENV)/lock-main.txt
	$(BIN)/pip install -q --require-hashes --no-deps --no-build-isolation -r $(VENV)/lock-sam2.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The README's ingest example: data/example/ (what data.dvc tracks), written by a deterministic
# script, so a fresh clone needs no DVC remote for it.
.PHONY: example-data
example-data: setup
	$(BIN)/python scripts/make_example_data.py

# Debian's chromium for the browser tests, where the script exists (it installs only if missing).
browser:
	@if [ -f scripts/setup_browser.sh ]; then bash scripts/setup_browser.sh; fi

# Refresh the lock after editing pyproject.toml or requirements/lock.in:
#   make lock                        keeps every current pin that still fits
#   make lock LOCK_ARGS=--upgrade    takes the newest releases the indexes offer
# then `make setup` and commit requirements/lock.txt. uv resolves for x86_64 Linux and CPython 3.11
# on pip's indexes and find-links as this machine configures them (uv does not read pip's config).
# Its hashes are those of the files the resolution picked: on this kind of machine the local
# copies (/opt) where they exist, PyPI's elsewhere. (pip-compile --generate-hashes would download
# every file of every pinned release, all platforms of torch and CUDA included, to hash them.)
PIP_CONFIG = $(shell $(PYTHON) -m pip config get $(1) 2>/dev/null)
lock: $(LOCK_VENV)/bin/uv
	$(LOCK_VENV)/bin/uv pip compile $(LOCK_ARGS) --python $(PYTHON) --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes --index-strategy unsafe-best-match \
		$(foreach url,$(call PIP_CONFIG,global.extra-index-url),--extra-index-url $(url)) \
		$(foreach dir,$(call PIP_CONFIG,global.find-links),--find-links $(dir)) \
		--no-emit-index-url --no-emit-find-links --custom-compile-command "make lock" \
		--extra diffusers --extra ui --extra test -o $(LOCK) pyproject.toml requirements/lock.in

$(LOCK_VENV)/bin/uv:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q "uv==0.13.9"

run: setup
	$(BIN)/snakemake -j$(JOBS)
	$(BIN)/python -m brokenvideos phase-times --config config.yaml

test: setup
	$(BIN)/python -m pytest -q --durations=25

lint: setup
	$(BIN)/snakemake --lint

dry-run: setup
	$(BIN)/snakemake -n

report: setup
	$(BIN)/snakemake --report report.html

clean:
	rm -rf results .snakemake report.html
