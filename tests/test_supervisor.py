"""`make run`'s supervisor with real processes: a child that dies is restarted, a crash loop stops it,
and stopping leaves nothing behind (not even what a child started)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from hub.supervisor import Child, CrashLoop, Supervisor
from tests.conftest import wait_until


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_child_that_dies_is_restarted_and_logged() -> None:
    lines: list[str] = []
    child = Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor([child], log=lines.append)
    supervisor.start_all()
    try:
        first = child.proc.pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: (supervisor.check() or True) and child.proc.pid != first and child.proc.poll() is None,
                   timeout=10, what="the restart")
        assert lines == ["sleeper exited with code -9; restarting it in 1 s", "restarting sleeper"]
        assert not alive(first)
    finally:
        supervisor.stop_all(timeout=5)


def test_a_child_that_keeps_dying_stops_the_supervisor_with_its_exit_code() -> None:
    supervisor = Supervisor([Child("broken", [sys.executable, "-c", "raise SystemExit(3)"])], log=lambda _: None,
                            max_exits=3)
    supervisor.start_all()
    with pytest.raises(CrashLoop, match=r"broken exited 3 times within 60 s \(last exit code 3\)"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.1)
    supervisor.stop_all(timeout=5)


def test_stopping_ends_every_child_and_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    # The child starts a grandchild that ignores SIGTERM, as a pool process stuck in a task would.
    script = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', "
              f"'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    child = Child("parent", [sys.executable, "-c", script])
    supervisor = Supervisor([child], log=lambda _: None)
    supervisor.start_all()
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=10, what="the grandchild")
    grandchild = int(pid_file.read_text())
    supervisor.stop_all(timeout=5)
    wait_until(lambda: not alive(grandchild), timeout=5, what="the grandchild to exit")
    assert child.proc.poll() is not None
