# Warden. `make run` runs it for real on a local control plane; `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup run up down test lint crds bench bench-peers lock bench-paper ccxt-matrix chaos

setup:
	@bash scripts/setup.sh

run: setup
	@$(PY) -m devtools.localenv run

up: setup
	@$(PY) -m devtools.localenv up

down:
	@if [ -x $(PY) ]; then $(PY) -m devtools.localenv down; else echo "nothing to stop"; fi

test: setup
	@bash scripts/test.sh

# The full chaos schedule on a fresh local environment, then the invariant check (docs/RELIABILITY.md):
# 50 Positions, 200 kills, every fault mode; about 45 minutes. SEED=, POSITIONS=, KILLS= change it.
chaos: setup
	@$(PY) -m devtools.chaos run --seed $(or $(SEED),1) --positions $(or $(POSITIONS),50) --kills $(or $(KILLS),200) $(ARGS)

lint:
	@.venv/bin/ruff check controller paper devtools tests bench
	@.venv/bin/ruff format --check controller paper devtools tests bench
	@.venv/bin/mypy controller paper devtools bench

crds:
	@$(PY) -m controller.api.crdgen

# Re-lock after changing pyproject.toml: uv.lock (everything, with hashes) and requirements.lock (its runtime part,
# for the Dockerfile). `make setup` installs exactly uv.lock; ARGS=--upgrade moves every pin to the newest allowed.
lock:
	@bash scripts/lock.sh $(ARGS)

# Warden's benchmark on the local real components (not part of make test); writes bench/results/<date>.json and
# the table in docs/PERFORMANCE.md. Smaller runs: make bench ARGS="--sizes 1,10,100 --accounts 0 --shards 0".
bench: setup
	@$(PY) -m bench.warden $(ARGS)

# Warden side by side with freqtrade and nautilus_trader on one paper exchange (issue 18; not part of make test):
# builds each peer's venv once under ~/.cache/warden/peers/ (PyPI, pinned), then writes bench/results/peers-<date>.json,
# the table in docs/PERFORMANCE.md and a PNG. Smaller: make bench-peers ARGS="--samples 5 --idle-seconds 30".
bench-peers: setup
	@bash scripts/peers-venv.sh
	@$(PY) -m bench.peers $(ARGS)

# Paper-exchange throughput with 1,000 resting orders (a benchmark, not a test); prints one JSON line.
bench-paper: setup
	@$(PY) bench/paper_throughput.py $(ARGS)

# tests/paper against one ccxt release in a cached venv: make ccxt-matrix CCXT=4.5.85 (or lock, newest).
ccxt-matrix:
	@bash scripts/ccxt-matrix.sh $(or $(CCXT),lock)
