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

.PHONY: help venv engine images artifacts local-artifacts lab lab-down lint unit molecule test clean

help:
	@echo "make lab        bring up the local lab and run site.yml against it"
	@echo "make lab-down   remove the lab (containers, network, volumes) and nothing else"
	@echo "make test       lint, unit tests and every molecule scenario"
	@echo "make images     build the systemd base images"
	@echo "make artifacts  build upstream artifacts from the Go module proxy into the cache"

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

engine: venv
	$(LABKIT) engine

images: engine
	$(LABKIT) images

artifacts: venv
	$(LABKIT) artifacts

# The components the lab and the tests install that can be built here
# (README.md, "Upstream artifacts", says which cannot): the kit's own
# OpenTelemetry Collector, VictoriaLogs and the NVIDIA toolkit's Go binaries.
# Nothing AGPL (Loki, Alloy) is ever built.
local-artifacts: venv
	$(LABKIT) artifacts otelcol-kit victorialogs nvidia-container-toolkit

lab: images local-artifacts
	$(LABKIT) up

lab-down: venv
	$(LABKIT) down

lint: venv
	yamllint --strict .
	ansible-lint --profile production --strict

unit: venv
	pytest -q tests/unit

# A scenario that needs what cannot be had here names it in
# molecule/<scenario>/requires: one line "VARIABLE what is missing", e.g.
# "LOKI_RELEASE_ARCHIVE no Loki release archive". Without that variable the
# scenario is not run and the loop says so in a line of its own (a skip is
# never a pass).
molecule: images local-artifacts
	@for scenario in $(SCENARIOS); do \
	  if [ -f molecule/$$scenario/requires ]; then \
	    read -r var why < molecule/$$scenario/requires; \
	    if [ -z "$${!var:-}" ]; then echo "SKIPPED: $$why (set $$var)"; continue; fi; \
	  fi; \
	  echo "=== molecule test -s $$scenario"; \
	  molecule test -s $$scenario || exit 1; \
	done

test: lint unit molecule

clean:
	rm -rf $(VENV) .cache
