"""The v2 bench's peers: KServe's Python ModelServer and MLServer, each in its own cached virtualenv,
serving one ONNX file with a small model class (ONNX Runtime session, ``predict`` = the logits).

The virtualenvs live in ``.bench/venvs/<peer>-<version>`` (git-ignored): created with pip from the
registry on the first run, reused afterwards (a ``.complete`` marker says the install finished).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import _common as c

VENVS = c.ROOT / ".bench" / "venvs"
#: The same ONNX Runtime as relu-serve's pin, so the sessions are the same code.
ORT_PIN = "onnxruntime==1.31.1"


@dataclass(frozen=True)
class Peer:
    key: str
    version: str
    requirements: tuple[str, ...]
    note: str  # what it accepts, shown under the table

    @property
    def venv(self) -> Path:
        return VENVS / f"{self.key}-{self.version}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


KSERVE = Peer(
    "kserve",
    "0.21.0",
    ("kserve==0.21.0", ORT_PIN),
    "kserve: ModelServer, 1 uvicorn worker, latency logging and uvicorn access log off",
)
MLSERVER = Peer(
    "mlserver",
    "1.7.1",
    # uvloop 0.22+ kills MLServer 1.7.1's worker at start (../shared/V2_PROTOCOL.md, C).
    ("mlserver==1.7.1", "uvloop==0.21.0", ORT_PIN),
    "mlserver: parallel_workers 0 (inference in the server process), debug off (no access "
    "log), metrics off; it refuses binary tensors (422), so its rows send JSON tensors",
)
PEERS = (KSERVE, MLSERVER)


def ensure_venv(peer: Peer) -> Path:
    """The peer's virtualenv, created and installed on first use; raises RuntimeError with
    pip's last lines when the install fails."""
    marker = peer.venv / ".complete"
    if marker.exists():
        return peer.python
    print(f"creating {peer.venv.relative_to(c.ROOT)} (pip from the registry, once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(peer.venv)], check=True)
    pip = [str(peer.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, *peer.requirements], capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"pip install {' '.join(peer.requirements)} failed:\n{tail}")
    marker.write_text(" ".join(peer.requirements) + "\n")
    return peer.python


# ---- KServe: a kserve.Model subclass started by kserve.ModelServer

KSERVE_SCRIPT = '''\
"""One ONNX file as a KServe v2 model (written by bench/peers.py)."""
import logging
import os
import uuid

import grpc.aio._server
import onnxruntime as ort
import uvicorn
from kserve import Model, ModelServer
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

SESSION_OPTIONS = {session_options}


# KServe binds every interface (HTTP "0.0.0.0", gRPC "[::]"); the bench listens on loopback only.
class LoopbackConfig(uvicorn.Config):
    def __init__(self, *args, **kwargs):
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


uvicorn.Config = LoopbackConfig
_add_port = grpc.aio._server.Server.add_insecure_port
grpc.aio._server.Server.add_insecure_port = lambda self, address: _add_port(
    self, address.replace("[::]", "127.0.0.1")
)


class OnnxModel(Model):
    def __init__(self, name, path):
        super().__init__(name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        for key, value in SESSION_OPTIONS.items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        self.ready = True

    def predict(self, payload: InferRequest, headers=None, response_headers=None):
        (logits,) = self.session.run([self.output], {{self.input: payload.inputs[0].as_numpy()}})
        out = InferOutput(name=self.output, shape=list(logits.shape), datatype="FP32")
        out.set_data_from_numpy(logits, binary_data=payload.use_binary_outputs)
        return InferResponse(
            response_id=payload.id or str(uuid.uuid4()),
            model_name=self.name,
            infer_outputs=[out],
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )


if __name__ == "__main__":
    model = OnnxModel(os.environ["BENCH_MODEL_NAME"], os.environ["BENCH_MODEL_PATH"])
    server = ModelServer()  # ports, workers and logging flags from the command line
    # After ModelServer() configured logging: no line per request.
    for name in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])
'''

# ---- MLServer: an MLModel subclass, model-settings.json and settings.json

MLSERVER_SCRIPT = '''\
"""One ONNX file as an MLServer v2 model (written by bench/peers.py)."""
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

SESSION_OPTIONS = {session_options}


class OnnxModel(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        for key, value in SESSION_OPTIONS.items():
            options.add_session_config_entry(key, value)
        path = self.settings.parameters.uri
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        (logits,) = self.session.run([self.output], {{self.input: x}})
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(self.output, logits)],
        )
'''

#: relu-serve's own session settings (service/session.py): no spinning threads.
SESSION_OPTIONS = {
    "session.intra_op.allow_spinning": "0",
    "session.inter_op.allow_spinning": "0",
}


def kserve_argv(python: Path, directory: Path, http_port: int, grpc_port: int) -> list[str]:
    script = directory / "kserve_model.py"
    script.write_text(KSERVE_SCRIPT.format(session_options=SESSION_OPTIONS))
    flags = ["--http_port", str(http_port), "--grpc_port", str(grpc_port), "--workers", "1"]
    flags += ["--enable_latency_logging", "false", "--enable_docs_url", "false"]
    return [str(python), str(script), *flags]


def mlserver_argv(
    python: Path, directory: Path, name: str, model: Path, ports: tuple[int, int]
) -> list[str]:
    """MLServer's repository: settings.json at the root, one model folder with its class."""
    http_port, grpc_port = ports
    root = directory / "mlserver"
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "onnx_model.py").write_text(
        MLSERVER_SCRIPT.format(session_options=SESSION_OPTIONS)
    )
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "parallel_workers": 0,
        "debug": False,
        "metrics_endpoint": None,
        "load_models_at_startup": True,
    }
    (root / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": name,
        "implementation": "onnx_model.OnnxModel",
        "parameters": {"uri": str(model)},
    }
    (root / name / "model-settings.json").write_text(json.dumps(model_settings))
    # The console script's shebang would pin the virtualenv's path: call its entry point instead.
    return [str(python), "-c", "from mlserver.cli import main; main()", "start", str(root)]


def version_of(python: Path, distribution: str) -> str:
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"
