"""Our gRPC messages are wire-compatible with Triton's, and the generated module is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor
from tritonclient.grpc import model_config_pb2, service_pb2

from service.grpc.proto import relu_serve_v2_pb2 as ours

PROTO = Path(__file__).resolve().parents[2] / "service/grpc/proto"
TRITON = {
    **service_pb2.DESCRIPTOR.message_types_by_name,
    **model_config_pb2.DESCRIPTOR.message_types_by_name,
}


def fields(descriptor: Descriptor) -> dict[str, tuple[int, int, bool]]:
    return {f.name: (f.number, f.type, f.is_repeated) for f in descriptor.fields}


def nested(descriptor: Descriptor) -> list[Descriptor]:
    return [descriptor, *(d for inner in descriptor.nested_types for d in nested(inner))]


MESSAGES = [d for top in ours.DESCRIPTOR.message_types_by_name.values() for d in nested(top)]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda d: d.full_name)
def test_every_field_has_tritons_number_and_type(message: Descriptor) -> None:
    path = message.full_name.removeprefix("relu_serve.v2.").split(".")
    theirs = TRITON[path[0]]
    for name in path[1:]:
        theirs = theirs.nested_types_by_name[name]
    expected = fields(theirs)
    for name, spec in fields(message).items():
        assert expected[name] == spec, f"{message.full_name}.{name}"


def test_the_data_types_have_tritons_numbers() -> None:
    enum: EnumDescriptor = ours.DESCRIPTOR.enum_types_by_name["DataType"]
    theirs = model_config_pb2.DESCRIPTOR.enum_types_by_name["DataType"]
    assert {v.name: v.number for v in enum.values} == {v.name: v.number for v in theirs.values}


def test_the_methods_we_register_exist_in_tritons_service() -> None:
    from service.config import Settings
    from service.grpc.server import SERVICE, methods
    from service.runtime import Runtime
    from service.v2.dataplane import DataPlane

    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == SERVICE
    ours = methods(DataPlane(Runtime(Settings(model_path=Path("unused.onnx")))))
    assert set(ours) <= {m.name for m in service.methods}
    for name, (_, request_type) in ours.items():
        their_request = service.methods_by_name[name].input_type.name
        assert request_type.DESCRIPTOR.name == their_request


def test_the_stream_method_has_tritons_shape() -> None:
    from service.grpc.server import STREAM

    method = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name[STREAM]
    assert method.client_streaming
    assert method.server_streaming
    assert method.input_type.name == ours.ModelInferRequest.DESCRIPTOR.name
    assert method.output_type.name == ours.ModelStreamInferResponse.DESCRIPTOR.name


def test_the_generated_module_is_current(tmp_path: Path) -> None:
    """`make proto` would write what is committed (same grpcio-tools as constraints.txt)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(PROTO / "relu_serve_v2.proto"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in ("relu_serve_v2_pb2.py", "relu_serve_v2_pb2.pyi"):
        assert (tmp_path / name).read_text() == (PROTO / name).read_text(), (
            f"run make proto: {name}"
        )
