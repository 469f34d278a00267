# The one place commands are spelled out; the README, CI and people all use these targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MODEL  ?= models/relu_cnn.onnx
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: help serve model test lint format unit bench docker-test clean
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Serving needs the export extra too: `make serve` trains the model when it is missing.
$(VENV)/.serve: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e '.[export]'
	@touch $@

$(VENV)/.dev: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e '.[dev,export]'
	@touch $@ $(VENV)/.serve

$(MODEL): | $(VENV)/.serve
	$(PY) -m model_export --out $(MODEL)

model: $(VENV)/.serve  ## train and export the default model (always retrains)
	$(PY) -m model_export --out $(MODEL)

serve: $(VENV)/.serve $(MODEL)  ## set up, build the model if missing, serve on http://127.0.0.1:8000
	RELU_SERVE_MODEL_PATH=$(MODEL) $(PY) -m service

lint: $(VENV)/.dev  ## ruff, ruff format --check, mypy --strict, import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy service model_export
	$(VENV)/bin/mypy tests
	$(VENV)/bin/lint-imports

format: $(VENV)/.dev  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: $(VENV)/.dev  ## the test suite alone
	$(PY) -m pytest --cov=service --cov-report=term-missing:skip-covered --cov-fail-under=90

test: lint unit  ## everything CI runs: lint and the whole test suite

# Needs wrk and valgrind (apt-get install -y wrk valgrind) and two cores;
# ARGS="--quick", "--only heavy", "--soak 60", "--instructions-only".
bench: $(VENV)/.dev  ## relu-serve vs the bare-ASGI ceiling and tutorial FastAPI (wrk + callgrind, ~8 min)
	$(PY) -m bench.serving $(ARGS)

# Needs Docker with Compose v2. torch's CPU wheel comes from TORCH_INDEX_URL, or from
# deploy/wheels/ when a torch wheel is there (offline builds; see deploy/wheels/README.md).
docker-test:  ## build the image, compose up until healthy, smoke /predict (PNG) and /activate, down
	docker compose build relu-serve
	docker compose up --detach --wait --wait-timeout 120 relu-serve || \
	  { docker compose logs relu-serve; docker compose down; exit 1; }
	python3 deploy/smoke.py --url http://127.0.0.1:8000 || \
	  { docker compose logs relu-serve; docker compose down; exit 1; }
	docker compose down

clean:  ## remove the virtualenv, models and caches
	rm -rf $(VENV) models .pytest_cache .mypy_cache .ruff_cache .coverage
