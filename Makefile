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

.PHONY: help venv engine images artifacts local-artifacts lab lab-down lint unit molecule e2e test clean

help:
	@echo "make lab        bring up the local lab and run site.yml against it"
	@echo "make lab-down   remove the lab (containers, network, volumes) and nothing else"
	@echo "make test       lint, unit tests, every molecule scenario and the end-to-end suite"
	@echo "make e2e        bring up the lab and run the end-to-end suite (tests/e2e) against it"
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
# (README.md, "Upstream artifacts", says which cannot).
local-artifacts: venv
	$(LABKIT) artifacts loki nvidia-container-toolkit

lab: images local-artifacts
	$(LABKIT) up

lab-down: venv
	$(LABKIT) down

lint: venv
	yamllint --strict .
	ansible-lint --profile production --strict

unit: venv
	pytest -q tests/unit

# A scenario whose molecule.yml says `# needs: CONCOURSE_RELEASE_ARCHIVE`
# runs only when that archive is given; otherwise the loop says SKIPPED.
molecule: images local-artifacts
	@for scenario in $(SCENARIOS); do \
	  if grep -q '^# needs: CONCOURSE_RELEASE_ARCHIVE' molecule/$$scenario/molecule.yml \
	     && [ -z "$${CONCOURSE_RELEASE_ARCHIVE:-}" ]; then \
	    echo "=== molecule test -s $$scenario"; \
	    echo "SKIPPED: no Concourse release archive (set CONCOURSE_RELEASE_ARCHIVE)"; \
	    continue; \
	  fi; \
	  echo "=== molecule test -s $$scenario"; \
	  molecule test -s $$scenario || exit 1; \
	done

# The lab as `make lab` brings it up, then the suite against it; without a
# release archive the Concourse tests report SKIPPED in lines of their own.
e2e: lab
	pytest -rs tests/e2e

test: lint unit molecule e2e

clean:
	rm -rf $(VENV) .cache
