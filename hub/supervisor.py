"""`make run`'s process supervisor: the hub's processes on one machine, restarted when one dies.

Each child runs in a session of its own, so a terminal's Ctrl-C reaches only the supervisor, which
then stops the children in order and makes sure nothing they started (Celery's pool, gunicorn's
workers) outlives it. A child that dies is restarted after a short backoff and logged; one that
keeps dying (crash loop) stops everything with its exit code, rather than restarting forever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    exits: list[float] = field(default_factory=list)  # monotonic times of unexpected exits
    restart_at: float | None = None


class CrashLoop(RuntimeError):
    pass


class Supervisor:
    def __init__(self, children: list[Child], *, log: Callable[[str], None], max_exits: int = 5,
                 window_seconds: float = 60.0) -> None:
        self.children = children
        self.log = log
        self.max_exits = max_exits
        self.window_seconds = window_seconds

    def start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, start_new_session=True)
        child.restart_at = None

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)

    def check(self) -> None:
        """Restart children that died; raise CrashLoop for one that died too often in the window."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self.log(f"restarting {child.name}")
                    self.start(child)
                continue
            code = child.proc.poll() if child.proc else None
            if code is None:
                continue
            _kill_group(child.proc, signal.SIGKILL)  # what it left behind (pool processes) goes with it
            child.exits = [t for t in child.exits if now - t < self.window_seconds] + [now]
            if len(child.exits) >= self.max_exits:
                raise CrashLoop(f"{child.name} exited {len(child.exits)} times within {self.window_seconds:.0f} s "
                                f"(last exit code {code}); see its log above")
            backoff = min(2 ** (len(child.exits) - 1), 30)
            self.log(f"{child.name} exited with code {code}; restarting it in {backoff} s")
            child.restart_at = now + backoff

    def run(self, stopping: Callable[[], bool], *, interval: float = 0.5) -> None:
        while not stopping():
            self.check()
            time.sleep(interval)

    def stop_all(self, *, timeout: float = 20.0) -> None:
        """SIGTERM each child (a warm shutdown), then SIGKILL whatever of its process group is left."""
        running = [c.proc for c in self.children if c.proc is not None]
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _kill_group(proc, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the child leads its own session, so its group id is its pid
