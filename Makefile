# Two commands matter: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MXCTL := $(VENV)/bin/mxctl

.PHONY: bootstrap test test-trixie lint typecheck unit demo lab-up lab-down bench clean

bootstrap:
	@bash .ci/bootstrap

lint: bootstrap
	$(VENV)/bin/ruff check orchestrator deploys inventories lab tests bench
	$(VENV)/bin/ruff format --check orchestrator deploys inventories lab tests bench

typecheck: bootstrap
	$(VENV)/bin/mypy --strict orchestrator
	$(VENV)/bin/mypy --strict lab/mxlab --exclude lab/mxlab/deploys  # deploys: pyinfra, like deploys/

# The whole suite, lab tests included, on a Debian 12 lab (Dovecot 2.3); then the pair-level
# lab tests again on a second lab whose mail hosts run Debian 13 (Dovecot 2.4, mxctl-dsync),
# with the tests that need 2.4. A missing prerequisite fails; nothing is skipped.
# `make test-trixie` runs only the second part.
TRIXIE_LAB := MXCTL_LAB_SUITE=trixie MXCTL_LAB_NAME=$(or $(TRIXIE_LAB_NAME),mxlab13) \
	MXCTL_LAB_SUBNET=$(or $(TRIXIE_LAB_SUBNET),10.254.113.0/24) \
	MXCTL_LAB_DIR=$(or $(TRIXIE_LAB_DIR),/var/lib/mxctl-lab13)
PAIR_LAB_TESTS := tests/deploy/test_lab_deploy.py tests/deploy/test_lab_mail.py \
	tests/probes/test_lab_canary.py tests/probes/test_lab_faults.py \
	tests/controller/test_fencing_lab.py tests/controller/test_failover_lab.py \
	tests/controller/test_maintenance_lab.py tests/replication/test_dsync_lab.py \
	tests/lab/test_zz_teardown.py

test: lint typecheck
	MXCTL_REQUIRE_LAB=1 $(PY) -m pytest -ra -p no:cacheprovider -m "not dovecot24" tests
	$(MAKE) test-trixie

test-trixie: bootstrap
	$(TRIXIE_LAB) MXCTL_REQUIRE_LAB=1 MXCTL_LAB_TEARDOWN=1 \
		$(PY) -m pytest -ra -p no:cacheprovider $(PAIR_LAB_TESTS)

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
