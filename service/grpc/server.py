"""The gRPC server: grpcio's asyncio server in uvicorn's event loop (so it shares the batcher),
serving inference.GRPCInferenceService over service.v2.DataPlane.

Every method hands its request to the data plane; domain errors become the status codes of the
v2 table (service/v2/status.py) with the same messages as over HTTP. ModelStreamInfer (Triton's
stream of infer requests) answers each of its messages as ModelInfer would, in order: the
response, or that one request's error as ``error_message``; an error never ends the stream. With API keys set, every
method but ServerLive and ServerReady needs one in the metadata (``x-api-key: <key>`` or
``authorization: Bearer <key>``), else UNAUTHENTICATED. grpcio sets SO_REUSEPORT on Linux, so
with several workers each one serves the port and the kernel spreads connections over them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from google.protobuf.message import Message

from service import offload
from service.config import Settings
from service.errors import ServiceError
from service.grpc import convert
from service.grpc.proto import relu_serve_v2_pb2 as pb
from service.metrics import TALLY, Tally
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
STREAM = "ModelStreamInfer"
#: Requests of one stream worked on at once (so that the batcher can run them together); past
#: that the stream is not read and HTTP/2 flow control holds the client back.
STREAM_WINDOW = 32
Context = grpc.aio.ServicerContext[Any, Any]
#: A stream's answers in request order, then None once the client has sent all.
Answers = asyncio.Queue["asyncio.Future[pb.ModelStreamInferResponse] | None"]


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
        "ModelInfer": (_unary_infer(_model_infer(plane)), pb.ModelInferRequest),
        "ModelConfig": (model_config, pb.ModelConfigRequest),
        "ModelStatistics": (model_statistics, pb.ModelStatisticsRequest),
        "RepositoryIndex": (repository_index, pb.RepositoryIndexRequest),
    }


#: (request, its size in bytes, the message to answer in: None for a new one) -> the answer.
Infer = Callable[
    [pb.ModelInferRequest, int, pb.ModelInferResponse | None], Awaitable[pb.ModelInferResponse]
]


def _unary_infer(infer: Infer) -> Method:
    async def model_infer(request: pb.ModelInferRequest) -> Message:
        return await infer(request, request.ByteSize(), None)

    return model_infer


def _model_infer(plane: DataPlane) -> Infer:
    deadline_s = plane.runtime.settings.request_timeout_ms / 1000
    inline = offload.INLINE_BODY_BYTES

    async def model_infer(
        request: pb.ModelInferRequest, size: int, into: pb.ModelInferResponse | None
    ) -> pb.ModelInferResponse:
        # Big messages are converted in a thread (typed contents become Python lists).
        if size <= inline:
            decoded = convert.infer_request(request)
        else:
            decoded = await offload.in_thread(deadline_s, convert.infer_request, request)
        response = await plane.infer(request.model_name, request.model_version, decoded)
        if sum(output.array.nbytes for output in response.outputs) <= inline:
            return convert.infer_response(response, into)
        return await offload.in_thread(deadline_s, convert.infer_response, response, into)

    return model_infer


def _handler(
    name: str,
    method: Method,
    request_type: type[Message],
    keys: list[bytes],
    meter: Tally | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    guarded = bool(keys) and name not in OPEN
    route = f"/{SERVICE}/{name}"  # the call's HTTP/2 path: the route label of its metrics

    async def handle(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        begun, code = time.perf_counter(), "CANCELLED"  # unless it gets further
        try:
            if guarded and not _allowed(context.invocation_metadata() or (), keys):
                code = "UNAUTHENTICATED"
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)
            try:
                response = await method(request)
                code = "OK"
                return response
            except ServiceError as exc:
                code = status_for(exc).grpc
                await context.abort(grpc.StatusCode[code], exc.message)
            except Exception:
                code = "INTERNAL"
                log.exception("internal error while serving gRPC %s", name)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            if meter is not None:  # gRPC is HTTP/2 POST; the status is the gRPC code's name
                meter.request(route, "POST", code, time.perf_counter() - begun)
        raise AssertionError("abort raises")  # pragma: no cover

    return grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=request_type.FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )


class _Stream:
    """ModelStreamInfer: up to STREAM_WINDOW of a stream's requests at once, answered in order.
    Every message's bytes are held in the worker's max_inflight_bytes budget until answered
    (past it, that request is answered Overloaded)."""

    route = f"/{SERVICE}/{STREAM}"

    def __init__(self, plane: DataPlane, keys: list[bytes], meter: Tally | None) -> None:
        self.infer, self.budget = _model_infer(plane), plane.runtime.inflight
        self.keys, self.meter = keys, meter

    def handler(self) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.stream_stream_rpc_method_handler(
            self.handle,
            request_deserializer=pb.ModelInferRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )

    async def handle(self, requests: object, context: Context) -> None:
        if self.keys and not _allowed(context.invocation_metadata() or (), self.keys):
            self.count("UNAUTHENTICATED", 0.0)  # counted once, as a refused call
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)
        answers: Answers = asyncio.Queue()  # at most STREAM_WINDOW answers and the end mark
        window = asyncio.Semaphore(STREAM_WINDOW)
        reader = asyncio.ensure_future(self.read(context, answers, window))
        try:
            while (pending := await answers.get()) is not None:
                await context.write(await pending)
                window.release()
            await reader  # the stream's own failure, if any, ends the call
        finally:
            reader.cancel()
            while not answers.empty():
                if (left := answers.get_nowait()) is not None:
                    left.cancel()

    async def read(self, context: Context, answers: Answers, window: asyncio.Semaphore) -> None:
        try:
            while True:
                await window.acquire()  # released once the answer is written
                request = await context.read()
                if request is grpc.aio.EOF:
                    return
                answers.put_nowait(asyncio.ensure_future(self.answer(request)))
        finally:
            answers.put_nowait(None)

    async def answer(self, request: pb.ModelInferRequest) -> pb.ModelStreamInferResponse:
        begun, code, held = time.perf_counter(), "CANCELLED", dict[str, Any]()
        try:
            size = request.ByteSize()
            self.budget.take(held, size)
            response = pb.ModelStreamInferResponse()
            await self.infer(request, size, response.infer_response)
            code = "OK"
        except ServiceError as exc:
            code = status_for(exc).grpc
            response = _stream_error(request, exc.message)
        except Exception:
            code = "INTERNAL"
            log.exception("internal error while serving gRPC %s", STREAM)
            response = _stream_error(request, "internal error")
        finally:
            self.budget.release(held)
            self.count(code, time.perf_counter() - begun)
        return response

    def count(self, code: str, seconds: float) -> None:
        if self.meter is not None:
            self.meter.request(self.route, "POST", code, seconds)


def _stream_error(request: pb.ModelInferRequest, message: str) -> pb.ModelStreamInferResponse:
    """One request's error on the stream, with its id (as Triton answers it)."""
    return pb.ModelStreamInferResponse(
        error_message=message,
        infer_response=pb.ModelInferResponse(
            model_name=request.model_name, model_version=request.model_version, id=request.id
        ),
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
    meter = TALLY if settings.metrics else None
    handlers = {
        name: _handler(name, method, request_type, keys, meter)
        for name, (method, request_type) in methods(plane).items()
    }
    handlers[STREAM] = _Stream(plane, keys, meter).handler()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
    await server.start()
    log.info("gRPC (KServe v2) on %s:%d", settings.host, settings.grpc_port)
    return server
