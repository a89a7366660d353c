# Two commands matter: `make up` (fresh machine -> running stack) and `make test`.
# Everything else is a convenience around `python -m scripts.zt`.
SHELL := /bin/bash
PY := .venv/bin/python
ZT := $(PY) -m scripts.zt
# The cached terraform CLI (scripts/config.py CACHE: /var/cache/zerotrust as root).
TERRAFORM = $$($(PY) -c 'from scripts import config; print(config.BIN / "terraform")')

.PHONY: help venv up down status clean renew validate backup test test-unit lint fmt

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

venv: ## create the pinned Python venv in the tool cache (once)
	@scripts/bootstrap.sh

up: venv ## install tools (cached), start the stack, apply Terraform, demo call
	@$(ZT) up

status: venv ## service health and every issued certificate
	@$(ZT) status

down: venv ## stop every process either profile's stack started (state is kept)
	@$(ZT) down
	@if [ -d .state-ha ]; then ZT_PROFILE=ha $(ZT) down; fi

clean: venv ## down, then delete the state folder
	@$(ZT) clean

renew: venv ## rotate certs past 2/3 of their lifetime, refresh the CRL (cron-safe)
	@$(ZT) renew

backup: venv ## one archive to restore the stack from (`zt restore <archive>`); holds secrets
	@$(ZT) backup

validate: venv ## check every config the stack would load, apply nothing (exit 1 + every problem)
	@$(ZT) validate

test: up ## the whole suite against the real stack
	@$(PY) -m pytest

test-unit: venv ## fast tests of the pure core, no servers
	@$(PY) -m pytest tests/unit

lint: venv ## ruff, terraform fmt -check, and `zt validate` (policy, settings, nginx -t, terraform validate)
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(TERRAFORM) fmt -check -recursive terraform
	@$(ZT) validate

fmt: venv ## format Python and Terraform
	@$(PY) -m ruff format .
	@$(TERRAFORM) fmt -recursive terraform

.PHONY: fuzz test-all

fuzz: venv ## long fuzz of the verifier core (<=100k inputs, <=3 min); 0 unsigned allows
	@$(PY) -m tests.fuzz.long_run

test-all: ## `make test` (includes the short fuzz) + `make fuzz` (the long run)
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory fuzz

.PHONY: bench
bench: venv ## cost of zero trust vs its baseline and oauth2-proxy (needs `make up`; ~5 min; bench/README.md)
	@$(PY) -m bench $(BENCH_ARGS)

.PHONY: up-ha down-ha test-ha
up-ha: venv ## the HA profile: PostgreSQL, 2 Keycloak nodes, 3 OpenBao raft nodes (docs/scaling.md)
	@ZT_PROFILE=ha $(ZT) up

down-ha: venv ## stop the HA profile's stack (state in .state-ha is kept)
	@ZT_PROFILE=ha $(ZT) down

test-ha: venv ## stop the default stack (same ports), bring the HA profile up, run its failure drills
	@$(ZT) down
	@ZT_PROFILE=ha $(ZT) up
	@ZT_PROFILE=ha $(PY) -m pytest -s tests/ha  # -s: each drill prints its figures
