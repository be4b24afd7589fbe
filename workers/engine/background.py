"""A helper thread that runs work in order beside the caller: hashing and writing overlap computing.

sha256 (hashlib), file writes and torch kernels all release the GIL, so on two cores a build that
hands its hashing and writing to this thread runs them at the same time as the next tensor's
merge. At most `depth` items wait, so memory stays a few tensors, never the model.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any


class OrderedBackground:
    """Run callables one at a time, in submission order, on one helper thread.

    A failure is raised in the caller at its next `submit` or at the end of the `with` block, and
    nothing submitted after it runs; an exception in the caller cancels what has not started and
    waits for what has.
    """

    def __init__(self, depth: int = 4, name: str = "engine-io") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(depth)
        self._pending: deque[Future] = deque()
        self._failed = False  # only the helper thread writes it

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if self._failed:
            return  # a step after a failed one would work on a broken state (a file missing a tensor)
        try:
            fn(*args)
        except BaseException:
            self._failed = True
            raise

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._slots.acquire()
        try:
            future = self._pool.submit(self._run, fn, args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._pending.append(future)
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()  # re-raises a failure as early as it is known

    def drain(self) -> None:
        """Wait until everything submitted has run; raise the first failure."""
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> OrderedBackground:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
