"""Graceful stop: SIGTERM with 50 requests in flight -> unready, all 50 answered 200, exit 0."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable

from tests.deploy.conftest import PREDICT_BODY, Replica, status_of, wait_until

IN_FLIGHT = 50


def open_request(port: int) -> socket.socket:
    """Send a /predict request's headers with `Expect: 100-continue` and wait for the server's
    100 Continue: the server has then started the request and is waiting for its body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(
        b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(PREDICT_BODY)
    )
    interim = sock.recv(64)
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    return sock


def finish_request(sock: socket.socket) -> tuple[int, dict]:  # type: ignore[type-arg]
    """Send the body, read the response until the server closes the connection."""
    sock.sendall(PREDICT_BODY)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_finishes_requests_in_flight_then_exits_0(
    replicas: Callable[..., Replica],
) -> None:
    replica = replicas(shutdown_drain_s="1", graceful_shutdown_s="20")
    replica.wait_ready()
    # Each request is provably in flight: started by the server, its body not yet sent.
    in_flight = [open_request(replica.port) for _ in range(IN_FLIGHT)]

    replica.process.send_signal(signal.SIGTERM)

    # Unready at once (the drain period keeps the listener open to say so) ...
    wait_until(lambda: status_of(f"{replica.url}/readyz") == 503, 5, "/readyz turning 503")
    # ... then the listener closes while the 50 requests are still waiting for their bodies.
    wait_until(lambda: refuses_connections(replica.port), 10, "the listener closing")
    assert replica.process.poll() is None, "the process exited with requests in flight"

    answers = [finish_request(sock) for sock in in_flight]
    assert [status for status, _ in answers] == [200] * IN_FLIGHT, answers
    assert all(body["predictions"][0]["label"] for _, body in answers)
    assert replica.process.wait(timeout=30) == 0, replica.log.read_text()
