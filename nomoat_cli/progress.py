"""Progress on stderr: a redrawn bar on a terminal; in logs and CI a plain line when the message changes,
every few seconds, and at the end (no dependency).

Thread-safe, because parallel range downloads report from several threads at once.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

BAR_WIDTH = 28
TTY_REDRAW_SECONDS = 0.1
LOG_LINE_SECONDS = 5.0


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """One task's progress: `total` bytes, or percent with unit="%", or a bare state (total None, unit "")."""

    def __init__(self, label: str, total: float | None = None, *, unit: str = "bytes", stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.done = 0.0
        self.message = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._drawn_at = self.started
        self._logged: tuple[str, float] = ("", 0.0)  # (message, done) at the last plain line

    def advance(self, amount: float) -> None:
        with self._lock:
            self.done += amount
            self._render()

    def update(self, done: float | None = None, message: str | None = None) -> None:
        with self._lock:
            self.done = self.done if done is None else done
            self.message = self.message if message is None else message
            self._render()

    def close(self, message: str | None = None) -> None:
        """Draw the final state and end the line."""
        with self._lock:
            self.message = self.message if message is None else message
            self._render(final=True)
            if self.enabled and self.tty:
                self.stream.write("\n")
                self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _text(self) -> str:
        parts = [self.label]
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            if self.tty:
                filled = int(fraction * BAR_WIDTH)
                parts.append("[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]")
            parts.append(f"{fraction * 100:5.1f}%")
        if self.unit == "bytes":
            elapsed = max(time.monotonic() - self.started, 1e-6)
            of_total = f"/{human_bytes(self.total)}" if self.total else ""
            parts.append(f"{human_bytes(self.done)}{of_total} {human_bytes(self.done / elapsed)}/s")
        if self.message:
            parts.append(self.message)
        return " ".join(parts)

    def _render(self, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if final or now - self._drawn_at >= TTY_REDRAW_SECONDS:
                self.stream.write("\r\x1b[K" + self._text())
                self.stream.flush()
                self._drawn_at = now
            return
        message, done = self._logged
        if self.message != message or (final and self.done != done) or now - self._drawn_at >= LOG_LINE_SECONDS:
            self.stream.write(self._text() + "\n")
            self.stream.flush()
            self._drawn_at, self._logged = now, (self.message, self.done)
