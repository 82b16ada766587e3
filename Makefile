# The README's commands. `venv/` is also the virtualenv Pulumi.yaml names for `pulumi up`.
PYTHON ?= python3
VENV ?= venv
STACK ?= dev
BIN := $(VENV)/bin

.PHONY: simulate preview up test bench lock defects

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs come from the locks, never from the ranges: the exact versions the tests ran, each file
# checked against its hash, nothing resolved at install time (docs/dependencies.md). The ranges in
# requirements*.txt are for those who embed the package; `make lock` turns them into the locks.
# Each also installs the `gp3migrate` command (venv/bin/gp3migrate), editable: it runs this checkout.
$(VENV)/.runtime: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The dev lock holds the runtime lock's pins unchanged (tests/test_lock.py), so it makes .runtime too.
$(VENV)/.dev: requirements.lock requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.runtime

# The one command that refreshes the locks from the ranges (then review the diff, run `make test`).
# `make lock` keeps every pin that still fits its range, so the diff holds only what a range change
# forced; `make lock UPGRADE=all` takes the newest release each range allows, `make lock
# UPGRADE="pulumi dill"` just those. The runtime lock constrains the dev lock: one version each.
# pip-tools runs in a venv of its own (the dev venv stays exactly the dev lock), and pip's config
# files and index variables are set aside so that a machine's local wheel folder, extra index or
# constraint file reaches neither the hashes nor the header.
PIP_TOOLS ?= pip-tools==7.7.0
LOCK_VENV := $(VENV)/.lock-tools
UPGRADE ?=
LOCK_UPGRADE = $(if $(filter all,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),--upgrade-package $(p)))
PIP_COMPILE = env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT -u PIP_NO_INDEX \
	PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND="make lock" \
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_UPGRADE)
# Above pip-compile's header, what the resolution ran on: markers (python_version, sys_platform)
# were evaluated for that Python and platform only.
LOCK_NOTE = \# Resolved with $$($(LOCK_VENV)/bin/python -V 2>&1) on $$(uname -sm); for another Python or platform see docs/dependencies.md.

$(LOCK_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip '$(PIP_TOOLS)'
	touch $@

lock: $(LOCK_VENV)/.installed
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) --constraint requirements.lock --output-file requirements-dev.lock requirements-dev.txt
	for f in requirements.lock requirements-dev.lock; do \
		{ echo "$(LOCK_NOTE)"; cat $$f; } > $$f.tmp && mv $$f.tmp $$f; \
	done

# The offline rehearsal in the simulation: every phase of the stack file, from nothing applied
# (no AWS, cluster or Pulumi CLI). `venv/bin/gp3migrate simulate --stack S` rehearses just the next up.
simulate: $(VENV)/.runtime
	$(BIN)/gp3migrate simulate --stack $(STACK) --walk

# Needs the Pulumi CLI, AWS credentials and the aws CLI (see README "Prerequisites").
preview: $(VENV)/.runtime
	pulumi stack select --create $(STACK)
	pulumi preview --stack $(STACK) --diff

up: $(VENV)/.runtime
	pulumi up --stack $(STACK)

# Lint, format check, type check and the test suite; no cloud, cluster or Pulumi CLI needed.
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python -m pytest -n auto

bench: $(VENV)/.dev
	$(BIN)/python -m scripts.benchmark

# Plants each defect of tests/defects/ into a scratch copy and runs only the simulation on it
# (docs/testing.md, "Planted defects"); about 20 minutes on two cores, so not part of `make test`.
defects: $(VENV)/.dev
	$(BIN)/python -m scripts.plant_defects
