"""No client can hold the web workers: slowloris headers and bodies that never arrive, against a real gunicorn
started with `make run`'s arguments (one worker), while ordinary requests must still be answered."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests

pytestmark = pytest.mark.embedded

SLOW_HEADER_SOCKETS = 10
SLOW_BODY_SOCKETS = 16


@contextmanager
def held_sockets(host: str, port: int, count: int, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections that each send `first_bytes` and then nothing more, held open."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection((host, port), timeout=10))
            sock.sendall(first_bytes)
            sockets.append(sock)
        yield sockets


SLOW_HEADERS = b"GET /api/v1/base-models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY = (b"POST /api/v1/auth/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 10000000\r\n\r\n{\"username\": \"al")


def read_until_closed(sock: socket.socket, *, timeout: float) -> bytes:
    """Whatever the server sends until it closes the connection; fails if it is still open after `timeout` seconds
    of silence."""
    sock.settimeout(timeout)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        pytest.fail(f"the connection was still open {timeout:.0f} s after the server's last byte")
    return answer


def ordinary_requests_answer(url: str) -> None:
    """Reads and a sign-in attempt, each of which must be answered within its (generous) client timeout."""
    for _ in range(3):
        assert requests.get(f"{url}/api/v1/base-models", timeout=10).status_code == 200
        assert requests.get(f"{url}/api/v1/adapters", timeout=10).status_code == 200
    refused = requests.post(f"{url}/api/v1/auth/tokens", json={"username": "nobody", "password": "wrong"}, timeout=10)
    assert refused.status_code == 401, refused.text


def test_slow_headers_and_slow_bodies_do_not_stall_other_requests(start_hub):
    hub = start_hub()
    with held_sockets(hub.host, hub.port, SLOW_HEADER_SOCKETS, SLOW_HEADERS), \
            held_sockets(hub.host, hub.port, SLOW_BODY_SOCKETS, SLOW_BODY):
        ordinary_requests_answer(hub.url)


def test_a_body_that_stops_arriving_is_cut_off(start_hub):
    """After the worker's timeout without a byte of the declared body, the connection is closed (the view never
    ran on a half body); the client sees the end of the stream, or an error status, never a 2xx."""
    hub = start_hub(timeout=2)
    with held_sockets(hub.host, hub.port, 1, SLOW_BODY) as (sock,):
        answer = read_until_closed(sock, timeout=20)
    assert not answer.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")), answer[:200]
    ordinary_requests_answer(hub.url)


@pytest.mark.parametrize("first_bytes", [SLOW_HEADERS, b""], ids=["half a header", "nothing"])
def test_a_first_request_whose_headers_stop_arriving_is_cut_off(start_hub, first_bytes):
    """gunicorn's asgi worker alone holds such a connection for good (only later requests on a connection get the
    keep-alive timer); hub/asgi_worker.py gives the first one the same --keep-alive (5 s) for its headers."""
    hub = start_hub()
    with held_sockets(hub.host, hub.port, 1, first_bytes) as (sock,):
        answer = read_until_closed(sock, timeout=30)
    assert not answer.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")), answer[:200]
    ordinary_requests_answer(hub.url)


def test_downloads_stream_through_the_asgi_worker_with_ranges(start_hub, make_user, make_version):
    """Under ASGI a file is sent chunk by chunk from the blob store (hub/core/streaming.py), with Range as ever."""
    weights = bytes(range(256)) * 4096  # 1 MiB
    make_version(make_user("alice"), "sql", files={"README.md": b"# sql\n", "adapter_model.safetensors": weights})
    hub = start_hub()
    url = f"{hub.url}/api/v1/adapters/alice/sql/versions/1/files/adapter_model.safetensors"
    part = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert part.status_code == 206 and part.content == weights[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(weights)}"
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200 and whole.content == weights
    assert "StreamingHttpResponse must consume" not in hub.log_text()  # Django did not read it whole into memory
