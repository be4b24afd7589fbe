"""The build's helper thread: work runs in order, and a failure on either side is never swallowed."""

from __future__ import annotations

import threading

import pytest

from workers.engine.background import OrderedBackground


def test_work_runs_in_submission_order_off_the_callers_thread() -> None:
    seen: list[tuple[int, str]] = []
    with OrderedBackground(depth=2) as background:
        for index in range(50):
            background.submit(lambda i: seen.append((i, threading.current_thread().name)), index)
    assert [i for i, _ in seen] == list(range(50))
    assert all(name != threading.current_thread().name for _, name in seen)


def test_a_failure_on_the_helper_reaches_the_caller() -> None:
    ran: list[int] = []

    def step(index: int) -> None:
        if index == 3:
            raise OSError("disk full")
        ran.append(index)

    with pytest.raises(OSError, match="disk full"), OrderedBackground(depth=1) as background:
        for index in range(10):
            background.submit(step, index)
    assert ran == [0, 1, 2]  # nothing after the failure ran


def test_a_failure_in_the_caller_cancels_what_has_not_started() -> None:
    gate, ran = threading.Event(), []
    with pytest.raises(RuntimeError), OrderedBackground(depth=8) as background:
        background.submit(gate.wait)
        for index in range(5):
            background.submit(ran.append, index)
        gate.set()  # the first item may finish; the queued ones are cancelled or run, never lost in between
        raise RuntimeError("caller failed")
    assert ran == list(range(len(ran)))
