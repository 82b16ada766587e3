# The README's commands. `venv/` is also the virtualenv Pulumi.yaml names for `pulumi up`.
PYTHON ?= python3
VENV ?= venv
STACK ?= dev
BIN := $(VENV)/bin

.PHONY: simulate preview up test bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Each also installs the `gp3migrate` command (venv/bin/gp3migrate), editable: it runs this checkout.
$(VENV)/.runtime: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.runtime

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
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/python -m scripts.benchmark
