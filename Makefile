# The kit's two entry points: `make lab` and `make test`. Everything they
# need is installed by the targets below on a fresh Debian machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/scripts
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export LABKIT_ARTIFACT_CACHE ?= $(HOME)/.cache/concourse-gpu-kit/artifacts
LABKIT := $(VENV)/bin/python -m labkit
SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help venv engine images artifacts local-artifacts lab lab-down lint unit molecule e2e test cold-test bench clean

# Every target carries a `## ` line of help; tests/unit/test_makefile.py
# fails when one does not.
help: ## list the targets
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / {printf "make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## make the Python venv (.venv) from requirements.txt

engine: venv ## make sure a Docker engine answers (starts Debian's docker.io if none)
	$(LABKIT) engine

images: engine ## build the systemd base images (Debian 12 and 13)
	$(LABKIT) images

artifacts: venv ## build every upstream artifact from the Go module proxy into the cache (needs go)
	$(LABKIT) artifacts

# The components the lab and the tests install that can be built here
# (README.md, "Upstream artifacts", says which cannot): the kit's own
# OpenTelemetry Collector, VictoriaLogs and the NVIDIA toolkit's Go binaries.
# Nothing AGPL (Loki, Alloy) is ever built.
local-artifacts: venv ## build the artifacts the lab and the tests install (needs go)
	$(LABKIT) artifacts otelcol-kit victorialogs nvidia-container-toolkit

lab: images local-artifacts ## bring up the local lab and run site.yml against it
	$(LABKIT) up

lab-down: venv ## remove the lab (containers, network, volumes) and nothing else
	$(LABKIT) down

lint: venv ## yamllint --strict and ansible-lint (production profile)
	yamllint --strict .
	ansible-lint --profile production --strict

# Hermetic: sockets disabled, HOME and the caches empty temporary folders,
# no Docker (tests/unit/conftest.py enforces it). -rs prints each SKIPPED line.
unit: venv ## the unit tests (pytest tests/unit; no network, Docker or caches)
	pytest -q -rs tests/unit

# A scenario that needs what cannot be had here names it in
# molecule/<scenario>/requires: one line "VARIABLE what is missing", e.g.
# "LOKI_RELEASE_ARCHIVE no Loki release archive". Without that variable the
# scenario is not run and the loop says so in a line of its own (a skip is
# never a pass).
molecule: images local-artifacts ## every molecule scenario (those needing an archive say SKIPPED without one)
	@for scenario in $(SCENARIOS); do \
	  echo "=== molecule test -s $$scenario"; \
	  if [ -f molecule/$$scenario/requires ]; then \
	    read -r var why < molecule/$$scenario/requires; \
	    if [ -z "$${!var:-}" ]; then echo "SKIPPED: $$why (set $$var)"; continue; fi; \
	  fi; \
	  molecule test -s $$scenario || exit 1; \
	done

# The lab as `make lab` brings it up, then the suite against it; without a
# release archive the Concourse tests report SKIPPED in lines of their own.
e2e: lab ## bring up the lab and run the end-to-end suite (tests/e2e) against it
	pytest -rsx tests/e2e

test: lint unit molecule e2e ## lint, unit tests, every molecule scenario and the end-to-end suite

# What CI runs, as a new machine sees it: a fresh clone of HEAD, an empty
# HOME and artifact cache, the kit's Docker images removed, its own lab
# name, then `CI=true bash .ci/run`, timed. Run it before a release.
cold-test: engine ## CI's run on a fresh clone with empty HOME and caches, the kit's images removed (timed)
	scripts/cold-test.sh $(COLD_TEST_DIR)

# A benchmark, not a test: a lab of its own (BENCH_LAB), about 40 minutes;
# BENCH_QUICK=1 runs a shorter set. matplotlib (bench/requirements.txt) is
# installed into the venv for the bench only. Writes bench/results.md and
# bench/results.png.
bench: images local-artifacts ## measure converge, no-change, scaling, re-provision and readiness times (bench/results.md)
	$(VENV)/bin/pip install --quiet -r bench/requirements.txt
	$(VENV)/bin/python -m bench

clean: ## remove the venv and .cache
	rm -rf $(VENV) .cache
