# mlops-lab: the two commands a new user needs are `make lab` and `make test`.
# Everything runs from .venv, which `make setup` builds from the pinned set.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/constraints.txt

# Auto-loaded pytest plugins from the stack (faker, hydra, anyio, ...) cost seconds on every
# start; load only the ones we use. DVC's analytics and MLflow's telemetry: off.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD := 1
export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true

.DEFAULT_GOAL := help
.PHONY: help setup lab demo test test-unit test-integration test-faults test-latest lint hooks format lock bench doctor ui cluster-up cluster-down cluster-smoke clean wheelhouse

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

# The stamp depends on the files that define the environment, so an unchanged setup is a no-op.
$(STAMP): pyproject.toml $(LOCK)
	$(if $(OFFLINE),$(PYTHON) tools/wheelhouse.py check --here $(OFFLINE))
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" $(PIP_FROM)
	@# torch first and alone: the pin takes the build that fits this machine (CPU here, CUDA on a GPU box).
	$(BIN)/python -m pip install --quiet -c $(LOCK) "torch==2.13.0" $(PIP_FROM)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev]" $(PIP_FROM)
	$(BIN)/python -m ipykernel install --sys-prefix --name mlops-lab --display-name "mlops-lab (.venv)" >/dev/null
	@touch $(STAMP)
	@echo "setup: .venv is ready ($$($(BIN)/python --version))"

# JupyterLab's settings defaults for this project (no news feed, no update check: a workshop room
# may be offline), in the venv, so every .venv/bin/jupyter lab gets them, `make lab` or not.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_SETTINGS): tools/jupyterlab/overrides.json | $(STAMP)
	@mkdir -p $(@D)
	cp $< $@

setup: $(STAMP) $(LAB_SETTINGS) ## build .venv with the pinned set (a no-op when nothing changed)

# A room without network: `make wheelhouse` on one machine with network fills WHEELHOUSE with
# every file setup installs (the lock, torch, the build backend, pip) and checks it. Copy the
# folder to each laptop (a USB stick) and run `make setup OFFLINE=dir` (or `make lab OFFLINE=dir`)
# there: the wheelhouse is checked first, then every pip call of the setup installs from it alone
# (--no-index). One platform + Python per wheelhouse: tools/wheelhouse.py download --help.
WHEELHOUSE ?= wheelhouse
OFFLINE ?=
PIP_FROM = $(if $(OFFLINE),--no-index --find-links $(abspath $(OFFLINE)))
wheelhouse: ## every file setup installs, into wheelhouse/ (WHEELHOUSE=dir); offline: make setup OFFLINE=dir
	$(PYTHON) tools/wheelhouse.py download $(WHEELHOUSE)
	$(PYTHON) tools/wheelhouse.py check $(WHEELHOUSE)

# JupyterLab on labs/, opened at lab 00, on loopback with a token (its default: never a blank one).
# .venv/bin first on PATH, and its terminal runs your shell, not the login shell JupyterLab picks
# when it has no tty (whose /etc/profile resets PATH): `mlops-lab` works in that terminal without
# activating .venv. The server fetches no news and checks for no updates (the settings file tells
# the page the same). tests/integration/test_lab_browser.py starts JupyterLab with these flags.
lab: setup ## set up, then open JupyterLab on labs/, at lab 00
	@# as root (containers, workshop VMs) JupyterLab refuses to start without --allow-root
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=labs \
		--LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
		--ServerApp.terminado_settings=shell_command="$${SHELL:-/bin/sh}" \
		$(if $(filter 0,$(shell id -u)),--allow-root) labs/00_start_here.ipynb

demo: setup ## run the story in the terminal: train, register, gate, promote
	$(BIN)/mlops-lab demo

# MLOPS_LAB_SOLUTIONS=1: each lab's exercises run their solutions (labs/solutions/) through the
# lab's own checks, so a solution that rots fails here. MLOPS_LAB_CHECKPOINT_CACHE: the labs'
# champion checkpoint is built once per run (the real pipeline) and copied into each lab's
# workspace, instead of one pipeline run per lab.
CHECKPOINT_CACHE := $(CURDIR)/workspace/.checkpoint-cache
test: setup lint ## set up, lint, and run every test (every lab too, with its solutions)
	rm -rf $(CHECKPOINT_CACHE)
	MLOPS_LAB_SOLUTIONS=1 MLOPS_LAB_CHECKPOINT_CACHE=$(CHECKPOINT_CACHE) \
		$(BIN)/python -m pytest -p nbval --nbval-lax --nbval-current-env --durations=15 tests labs

test-unit: setup ## unit tests only (fast)
	$(BIN)/python -m pytest tests/unit

test-integration: setup ## integration tests only (real MLflow, DVC, torch)
	$(BIN)/python -m pytest tests/integration

# The fault tests, wherever they live (-m fault): killed pipelines, crashed and hung candidates,
# the server fuzz, a full disk, every predictable CLI mistake, corrupt files. docs/faults.md
# lists what each one proves. `make test` runs them too.
test-faults: setup ## the fault suite alone: what breaks, and what the project promises then
	$(BIN)/python -m pytest -m fault -v tests

# The churn canary: the same tests and labs in .venv-latest, built from pyproject's ranges without
# the lock (newest releases). A separate environment: .venv is never touched. Writes
# reports/churn/report.md; exits 0 once the report is written (CHURN_FLAGS=--strict: 1 if anything broke).
CHURN_FLAGS ?=
test-latest: ## every test and lab against the newest releases (.venv-latest): reports/churn/report.md
	$(PYTHON) tools/churn.py --python $(PYTHON) $(CHURN_FLAGS)

lint: setup ## the pre-commit hooks on every file: ruff lint + format check, notebooks, YAML, workflows
	$(BIN)/pre-commit run --all-files

hooks: setup ## also run the lint hooks on every git commit (optional: make lint runs the same)
	$(BIN)/pre-commit install

format: setup ## ruff: fix what can be fixed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: ## regenerate the lock (constraints.txt, environment.yml) from pyproject's ranges: newest releases
	$(PYTHON) tools/lock.py --python $(PYTHON)

bench: setup ## benchmarks (not tests): results go to docs/benchmarks.md
	$(BIN)/python bench/pipeline.py --write docs/benchmarks.md
	$(BIN)/python bench/serving.py --write docs/benchmarks.md
	$(BIN)/python bench/loop.py --write docs/benchmarks.md
	$(BIN)/python bench/canary.py --write docs/benchmarks.md
	$(BIN)/python bench/drift_year.py --write docs/benchmarks.md
	$(BIN)/python bench/gameday.py --write docs/benchmarks.md
	$(BIN)/python bench/labs.py --write docs/benchmarks.md

# The site: Sphinx + MyST-NB (the labs with their committed outputs, never executed here) and
# the book theme. Strict: any warning (a broken link, a missing page, an unresolved reference, a
# docstring that does not parse) fails. tests/integration/test_docs_site.py builds it the same
# way under `make test` and looks at it in a real browser.
.PHONY: docs docs-serve
DOCS_OUT := docs/_build/html
docs: setup ## build the site strictly into docs/_build/html (labs, concepts, modules, API, guides)
	$(BIN)/sphinx-build -q -W --keep-going -n -b html docs $(DOCS_OUT)
	@echo "docs: open $(DOCS_OUT)/index.html, or run make docs-serve"

docs-serve: docs ## the built site on http://127.0.0.1:8000 (loopback only)
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory $(DOCS_OUT) 8000

doctor: setup ## check the tools this lab uses and say how to install what is missing
	$(BIN)/mlops-lab doctor

ui: setup ## the MLflow UI on 127.0.0.1:5000
	$(BIN)/mlops-lab ui

# The cluster tier (docs/cluster.md): kind with the machine's NVIDIA GPU (CPU-only where there is
# none, or with CLUSTER_PROFILE=cpu), KServe, MLflow + MinIO, Prometheus/Grafana, Argo. Needs
# Docker, kind, kubectl, helm; the laptop tier needs none of it. Versions: cluster/versions.env.
cluster-up: ## kind cluster (GPU where there is one) with KServe, MLflow, MinIO, Prometheus, Argo
	cluster/scripts/up.sh

cluster-down: ## delete the kind cluster
	cluster/scripts/down.sh

cluster-smoke: ## end to end on a machine with Docker and a GPU: up, train, serve, canary, down
	cluster/smoke.sh

clean: ## remove .venv and the default workspace
	rm -rf $(VENV) workspace
