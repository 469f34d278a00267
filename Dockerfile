# relu-serve image: the model is trained and exported by the project's own pipeline at build
# time; the runtime stage carries only the serving virtualenv and the model (no torch, no
# compilers, no pip cache) and runs as a numeric non-root user.
#
#   docker build -t relu-serve .                                          # CPU (default)
#   docker build -t relu-serve:gpu --build-arg ORT_REQUIREMENT='onnxruntime-gpu[cuda,cudnn]' .
#
# Build arguments:
#   TORCH_INDEX_URL  where the trainer finds torch's CPU wheel (PyPI's Linux wheel pulls ~3 GB
#                    of CUDA packages). Ignored when deploy/wheels/ holds a torch wheel (offline
#                    builds); set it empty to take torch from PyPI alone.
#   ORT_REQUIREMENT  the ONNX Runtime distribution of the runtime image: onnxruntime (CPU) or
#                    onnxruntime-gpu[cuda,cudnn] (CUDA and cuDNN libraries from PyPI).

FROM python:3.11-slim-bookworm AS base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY deploy/requirements.py deploy/slim_venv.py deploy/
# Optional local wheels (deploy/wheels/README.md): pip prefers them over the indexes.
COPY deploy/wheels/ /wheels/

# ---- trainer: torch + the export pipeline; trains and exports /models/relu_cnn.onnx
FROM base AS trainer
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Dependencies first (this layer survives code edits), then the project itself.
RUN python deploy/requirements.py export >/tmp/export.txt \
 && python -m venv /opt/export \
 && set -- \
 && if ! ls /wheels/torch-*.whl >/dev/null 2>&1 && [ -n "$TORCH_INDEX_URL" ]; then \
        set -- --extra-index-url "$TORCH_INDEX_URL"; \
    fi \
 && /opt/export/bin/pip install --find-links /wheels -c constraints.txt -r /tmp/export.txt "$@"
COPY README.md ./
COPY service/ service/
COPY model_export/ model_export/
RUN /opt/export/bin/pip install --no-deps -c constraints.txt . \
 && /opt/export/bin/python -m model_export --out /models/relu_cnn.onnx

# ---- venv: the serving virtualenv, project installed from its wheel without extras, then
# trimmed (deploy/slim_venv.py: test suites, ORT tooling, SciPy beyond what service/ imports)
FROM base AS venv
ARG ORT_REQUIREMENT=onnxruntime
RUN python deploy/requirements.py --swap "onnxruntime=${ORT_REQUIREMENT}" >/tmp/serve.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --find-links /wheels -c constraints.txt -r /tmp/serve.txt
COPY README.md ./
COPY service/ service/
COPY model_export/ model_export/
# numba's cache of the compiled activation kernels and of the classifier's normalising pass is
# made here, once: the service copies it into NUMBA_CACHE_DIR at start
# (RELU_SERVE_NUMBA_CACHE_SEED) and loads it in ~1 s instead of compiling for ~45 s; no
# request ever compiles (readiness waits for the kernels).
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /dist . \
 && /opt/venv/bin/pip install --no-deps /dist/relu_serve-*.whl \
 && /opt/venv/bin/python deploy/slim_venv.py service/ \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && NUMBA_CACHE_DIR=/opt/numba-cache /opt/venv/bin/python -P -c \
    "from service.activations import fused; from service.classifier import normalize; \
     normalize.warm_up(); print('numba cache:', ', '.join(fused.warm_up()))"

# ---- runtime
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="relu-serve" \
      org.opencontainers.image.description="ReLU CNN classifier and exact activations over HTTP" \
      org.opencontainers.image.licenses="MIT"
COPY --from=venv /opt/venv /opt/venv
COPY --from=venv /opt/numba-cache /opt/numba-cache
COPY --from=trainer /models/ /models/
# MALLOC_*: fresh multi-MB numpy temporaries otherwise cost page faults on every request
# (../shared/ACTIVATIONS.md): keep up to 256 MiB in the heap instead of mmap/munmap each time.
# LD_LIBRARY_PATH: where onnxruntime-gpu[cuda,cudnn] finds the CUDA 13 and cuDNN libraries
# it installed from PyPI (absent, and harmless, in the CPU image).
ENV PATH=/opt/venv/bin:$PATH \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cu13/lib:/opt/venv/lib/python3.11/site-packages/nvidia/cudnn/lib \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_MMAP_THRESHOLD_=268435456 \
    MALLOC_TRIM_THRESHOLD_=268435456 \
    RELU_SERVE_HOST=0.0.0.0 \
    RELU_SERVE_PORT=8000 \
    RELU_SERVE_GRPC_PORT=8001 \
    RELU_SERVE_MODEL_PATH=/models/relu_cnn.onnx \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    RELU_SERVE_NUMBA_CACHE_SEED=/opt/numba-cache
USER 10001:10001
# 8000: HTTP (REST and v2); 8001: v2 gRPC (inference.GRPCInferenceService)
EXPOSE 8000 8001
# No curl in the slim image: probe /readyz (503 until the model is warm, and during shutdown).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('RELU_SERVE_PORT', '8000'), timeout=2).status != 200)"]
CMD ["relu-serve"]
