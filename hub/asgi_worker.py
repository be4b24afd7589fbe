"""gunicorn's asgi worker, with the first request on a connection bounded like the ones after it.

gunicorn 27 arms its keep-alive timer only while a connection waits for its second or later request
(benoitc/gunicorn#3735 leaves the first one open on purpose). A connection that sends part of its first request's
headers, or nothing at all, is therefore held for as long as the client likes. Nothing but the process's file
descriptors bounds how many such connections pile up, and once those run out the worker accepts no one. This
worker gives the first request's headers the same --keep-alive seconds as every later request's, which is what
gunicorn's gevent worker does. A body that stops arriving is already cut off after --timeout.

Use it as `--worker-class hub.asgi_worker.HeaderTimeoutWorker`.
"""

from __future__ import annotations

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi


class HeaderTimeoutProtocol(ASGIProtocol):
    def _start_http1(self, buffered: bytes = b"") -> None:
        super()._start_http1(buffered)
        # The connection loop cancels this timer once the first request's headers are parsed, as it does for the
        # timer it arms itself before each later request.
        self._arm_keepalive_timer()


class HeaderTimeoutWorker(gasgi.ASGIWorker):
    def init_process(self) -> None:
        # gasgi builds each connection's protocol from its module-level name ASGIProtocol and offers no hook to
        # choose another. This runs in the worker process, after the fork, and before the worker's server starts.
        gasgi.ASGIProtocol = HeaderTimeoutProtocol
        super().init_process()
