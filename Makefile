# Two commands matter: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MXCTL := $(VENV)/bin/mxctl

.PHONY: bootstrap test lint typecheck unit demo lab-up lab-down bench clean

bootstrap:
	@bash .ci/bootstrap

lint: bootstrap
	$(VENV)/bin/ruff check orchestrator deploys inventories lab tests bench
	$(VENV)/bin/ruff format --check orchestrator deploys inventories lab tests bench

typecheck: bootstrap
	$(VENV)/bin/mypy --strict orchestrator
	$(VENV)/bin/mypy --strict lab/mxlab --exclude lab/mxlab/deploys  # deploys: pyinfra, like deploys/

# The whole suite, lab tests included. A missing prerequisite fails; nothing is skipped.
test: lint typecheck
	MXCTL_REQUIRE_LAB=1 $(PY) -m pytest -ra -p no:cacheprovider tests

demo: bootstrap
	$(PY) -m mxlab.demo

lab-up: bootstrap
	$(MXCTL) lab up

lab-down: bootstrap
	$(MXCTL) lab down

bench: bootstrap
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean: lab-down
	rm -rf $(VENV)
