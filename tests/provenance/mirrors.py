"""Small HTTP servers that hold blobs by sha256 (`/blobs/<sha256>`, Range requests), for multi-source downloads:
one may be throttled, one may corrupt what it sends. Each counts the bytes it sent. Used by the tests and by
bench/multi_source_pull.py."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)$")
CHUNK = 64 * 1024


class Mirror:
    def __init__(self, blobs: dict[str, bytes], *, bytes_per_second: float | None = None,
                 corrupt_from: int | None = None) -> None:
        self.blobs = blobs
        self.bytes_per_second = bytes_per_second
        self.corrupt_from = corrupt_from  # every byte from here on is flipped
        self.sent = 0
        self.authorization_seen = False  # a client must never send the hub's token to someone else's server
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client closing early is no error here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/blobs/{{sha256}}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                mirror.authorization_seen |= "Authorization" in self.headers
                data = mirror.blobs.get(self.path.rsplit("/", 1)[-1])
                if data is None or not self.path.startswith("/blobs/"):
                    self.send_error(404)
                    return
                start, end = 0, len(data) - 1
                match = RANGE_RE.match(self.headers.get("Range", ""))
                if match:
                    start = int(match[1])
                    end = min(int(match[2]), end) if match[2] else end
                self.send_response(206 if match else 200)
                self.send_header("Content-Length", str(end - start + 1))
                if match:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                for offset in range(start, end + 1, CHUNK):
                    chunk = bytearray(data[offset:min(offset + CHUNK, end + 1)])
                    if mirror.corrupt_from is not None:
                        for i in range(max(mirror.corrupt_from - offset, 0), len(chunk)):
                            chunk[i] ^= 0xFF
                    if mirror.bytes_per_second:
                        time.sleep(len(chunk) / mirror.bytes_per_second)
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    with mirror.lock:
                        mirror.sent += len(chunk)

        return Handler


@contextmanager
def serving(*mirrors: Mirror) -> Iterator[tuple[Mirror, ...]]:
    threads = [threading.Thread(target=m.server.serve_forever, daemon=True) for m in mirrors]
    for thread in threads:
        thread.start()
    try:
        yield mirrors
    finally:
        for mirror in mirrors:
            mirror.server.shutdown()
            mirror.server.server_close()
