"""The gRPC server: grpcio's asyncio server in uvicorn's event loop (so it shares the batcher),
serving inference.GRPCInferenceService over service.v2.DataPlane.

Every method hands its request to the data plane; domain errors become the status codes of the
v2 table (service/v2/status.py) with the same messages as over HTTP. With API keys set, every
method but ServerLive and ServerReady needs one in the metadata (``x-api-key: <key>`` or
``authorization: Bearer <key>``), else UNAUTHENTICATED. grpcio sets SO_REUSEPORT on Linux, so
with several workers each one serves the port and the kernel spreads connections over them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf.message import Message

from service import offload
from service.config import Settings
from service.errors import ServiceError
from service.grpc import convert
from service.grpc.proto import relu_serve_v2_pb2 as pb
from service.v2.dataplane import DataPlane
from service.v2.status import status_for

log = logging.getLogger("relu_serve")
SERVICE = "inference.GRPCInferenceService"
#: Methods open without an API key: the probes.
OPEN = frozenset({"ServerLive", "ServerReady"})
UNAUTHENTICATED = (
    "an API key is required: send it as metadata x-api-key: <key> or authorization: Bearer <key>"
)
Method = Callable[[Any], Awaitable[Message]]


def methods(plane: DataPlane) -> dict[str, tuple[Method, type[Message]]]:
    """Each method: what it does with its request, and the request's message type."""

    async def server_live(request: pb.ServerLiveRequest) -> Message:
        return pb.ServerLiveResponse(live=plane.live())

    async def server_ready(request: pb.ServerReadyRequest) -> Message:
        return pb.ServerReadyResponse(ready=plane.ready())

    async def model_ready(request: pb.ModelReadyRequest) -> Message:
        return pb.ModelReadyResponse(ready=plane.model_ready(request.name, request.version))

    async def server_metadata(request: pb.ServerMetadataRequest) -> Message:
        return pb.ServerMetadataResponse(**plane.server_metadata())

    async def model_metadata(request: pb.ModelMetadataRequest) -> Message:
        document = plane.model(request.name, request.version).metadata()
        document.pop("parameters", None)  # HTTP only: the message has no such field
        return pb.ModelMetadataResponse(**document)

    async def model_config(request: pb.ModelConfigRequest) -> Message:
        config = plane.model(request.name, request.version).config()
        return pb.ModelConfigResponse(config=convert.model_config(config))

    async def model_statistics(request: pb.ModelStatisticsRequest) -> Message:
        return convert.statistics(plane.statistics(request.name, request.version))

    async def repository_index(request: pb.RepositoryIndexRequest) -> Message:
        return pb.RepositoryIndexResponse(models=plane.repository_index())

    return {
        "ServerLive": (server_live, pb.ServerLiveRequest),
        "ServerReady": (server_ready, pb.ServerReadyRequest),
        "ModelReady": (model_ready, pb.ModelReadyRequest),
        "ServerMetadata": (server_metadata, pb.ServerMetadataRequest),
        "ModelMetadata": (model_metadata, pb.ModelMetadataRequest),
        "ModelInfer": (_model_infer(plane), pb.ModelInferRequest),
        "ModelConfig": (model_config, pb.ModelConfigRequest),
        "ModelStatistics": (model_statistics, pb.ModelStatisticsRequest),
        "RepositoryIndex": (repository_index, pb.RepositoryIndexRequest),
    }


def _model_infer(plane: DataPlane) -> Method:
    deadline_s = plane.runtime.settings.request_timeout_ms / 1000

    async def model_infer(request: pb.ModelInferRequest) -> Message:
        # Big messages are converted in a thread (typed contents become Python lists).
        size = request.ByteSize()
        decoded = await offload.by_size(size, deadline_s, convert.infer_request, request)
        response = await plane.infer(request.model_name, request.model_version, decoded)
        size = sum(output.array.nbytes for output in response.outputs)
        return await offload.by_size(size, deadline_s, convert.infer_response, response)

    return model_infer


def _handler(
    name: str, method: Method, request_type: type[Message], keys: list[bytes]
) -> grpc.RpcMethodHandler[Any, Any]:
    guarded = bool(keys) and name not in OPEN

    async def handle(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        if guarded and not _allowed(context.invocation_metadata() or (), keys):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)
        try:
            return await method(request)
        except ServiceError as exc:
            await context.abort(grpc.StatusCode[status_for(exc).grpc], exc.message)
        except Exception:
            log.exception("internal error while serving gRPC %s", name)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("abort raises")  # pragma: no cover

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )


def _allowed(metadata: Iterable[tuple[str, str | bytes]], keys: list[bytes]) -> bool:
    """Whether the metadata carries one of the keys; every key compared in constant time."""
    given: bytes | None = None
    for name, value in metadata:
        text = value if isinstance(value, bytes) else value.encode()
        if name == "x-api-key":
            given = text.strip()
        elif name == "authorization" and text[:7].lower() == b"bearer ":
            given = text[7:].strip()
    if given is None:
        return False
    found = False
    for key in keys:
        found |= hmac.compare_digest(key, given)
    return found


async def serve(settings: Settings, plane: DataPlane, api_keys: Iterable[str]) -> grpc.aio.Server:
    """A started server on settings.grpc_port, in the running event loop."""
    keys = [key.encode() for key in api_keys]
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1),
        ],
        maximum_concurrent_rpcs=settings.max_connections,
    )
    handlers = {
        name: _handler(name, method, request_type, keys)
        for name, (method, request_type) in methods(plane).items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    log.info("gRPC (KServe v2) on %s:%d", settings.host, settings.grpc_port)
    return server
