# The one place commands are spelled out; the README, CI and people all use these targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MODEL  ?= models/relu_cnn.onnx
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt
# torch's CPU build, never PyPI's Linux wheel and its ~3 GB of CUDA packages: a local
# torch-*+cpu wheel (deploy/wheels/, PIP_FIND_LINKS, pip.conf's find-links) when there is one,
# else this index; TORCH_INDEX_URL= takes PyPI's torch. deploy/torch_source.py says which.
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
TORCH  := $$($(PY) deploy/torch_source.py --index-url '$(TORCH_INDEX_URL)')
# glibc reads these once, at process start: keep freed multi-MB numpy buffers in the heap
# instead of returning them to the OS and page-faulting them back on the next request.
MALLOC := MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456
# Extra `python -m model_export` options for `make model` / `make serve`, e.g. TRAIN_ARGS="--threads 2".
TRAIN_ARGS ?=

.PHONY: help serve model test lint format unit bench bench-metrics docker-test vendor clean proto
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Serving needs no torch; the export extra (torch, onnx, ...) is installed only to build a model.
$(VENV)/.serve: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) -e .
	@touch $@

$(VENV)/.export: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) $(TORCH) -e '.[export]'
	@touch $@ $(VENV)/.serve

$(VENV)/.dev: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) $(TORCH) -e '.[dev,export]'
	@touch $@ $(VENV)/.serve $(VENV)/.export

# Not a prerequisite: make would install the export extra even when the model exists.
$(MODEL):
	@$(MAKE) --no-print-directory $(VENV)/.export
	$(PY) -m model_export --out $(MODEL) $(TRAIN_ARGS)

model: $(VENV)/.export  ## train and export the default model (always retrains)
	$(PY) -m model_export --out $(MODEL) $(TRAIN_ARGS)

serve: $(VENV)/.serve $(MODEL)  ## set up, build the model if missing, serve on http://127.0.0.1:8000
	$(MALLOC) RELU_SERVE_MODEL_PATH=$(MODEL) $(PY) -m service

# Needs npm; the files are committed, so serving and testing never do.
vendor:  ## re-vendor the playground's JavaScript (uPlot) from npm, pinned and integrity-checked
	python3 deploy/vendor.py

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

# The gRPC messages are generated from service/grpc/proto/relu_serve_v2.proto and committed, so that
# serving needs protobuf's runtime only; tests/unit/test_grpc_proto.py fails when they are stale.
proto: $(VENV)/.dev  ## regenerate service/grpc/proto/relu_serve_v2_pb2.py(i) with grpcio-tools
	$(PY) -m grpc_tools.protoc -Iservice/grpc/proto --python_out=service/grpc/proto \
	  --pyi_out=service/grpc/proto service/grpc/proto/relu_serve_v2.proto

# Needs wrk, valgrind and h2load (apt-get install -y wrk valgrind nghttp2-client) and two cores;
# ARGS="--quick", "--only heavy", "--only v2", "--soak 60", "--instructions-only". The v2 section
# installs KServe and MLServer into .bench/venvs/ on its first run (pip, from the registry).
bench: $(VENV)/.dev  ## relu-serve vs the ASGI ceiling, tutorial FastAPI, KServe, MLServer (~11 min)
	$(PY) -m bench.serving $(ARGS)

# Needs wrk and two cores; the default model (make model). ARGS="--phase-s 20", "--workers 1".
bench-metrics: $(VENV)/.dev  ## plot /metrics scraped from a live server under load (examples/metrics.png), ~2 min
	$(PY) -m bench.metrics_plot $(ARGS)

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
