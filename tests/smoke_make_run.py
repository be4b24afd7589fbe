"""Smoke of the README's first command, as a newcomer runs it: `make run` on a fresh data dir.

It starts `make run` in a process group of its own (as a terminal would), waits for the home page and the
API, kills the uploads worker once (the supervisor must restart it), uploads a small adapter with the token
`make run` printed and waits until it is published, builds a small stack and downloads it (sha256 = ETag),
then presses Ctrl-C (SIGINT to the group) and checks that every process `make run` started has exited and
that the port is free. Run by .ci/run after `make test`, which leaves the venv and the converted model.

    .venv/bin/python tests/smoke_make_run.py
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
START_TIMEOUT = 900  # a fresh data dir: migrate, seed (the converted SmolLM2 is reused), start four processes
FLOW_TIMEOUT = 300
TOKEN_RE = re.compile(r"API token \(demo, write\): (nmt_\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def wait_for(what: str, predicate: Callable[[], object], timeout: float, proc: subprocess.Popen, log: Path) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"`make run` exited with code {proc.returncode} while waiting for {what}", log)
        try:
            value = predicate()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(1)
    fail(f"timed out after {timeout:.0f} s waiting for {what}", log)


def fail(message: str, log: Path) -> None:
    print(f"--- last lines of the `make run` log ({log}) ---\n{log.read_text(errors='replace')[-6000:]}", file=sys.stderr)
    sys.exit(f"smoke FAILED: {message}")


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root` (by parent links in /proc), with its command line."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found[child] = commands.get(child, "")
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def make_adapter(folder: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from workers.engine.tiny import build_tiny_adapter, build_tiny_base

    base = build_tiny_base(folder / "base")  # deterministic: the same weights the hub seeds
    return build_tiny_adapter(base, folder / "adapter", seed=7)


def main() -> None:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="nomoat-smoke-"))
    log = data_dir / "make-run.log"
    env = {**os.environ, "NOMOAT_DATA_DIR": str(data_dir)}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "BLOB_STORE"):  # the embedded default, as a newcomer has it
        env.pop(name, None)
    url = f"http://{HOST}:{port}"
    print(f"smoke: make run on {url}, data dir {data_dir}")
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "run", f"HOST={HOST}", f"PORT={port}"], cwd=REPO_ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        token = wait_for("the API token to be printed", lambda: TOKEN_RE.search(log.read_text(errors="replace")),
                         START_TIMEOUT, proc, log).group(1)
        auth = {"Authorization": f"Bearer {token}"}
        wait_for("the home page", lambda: requests.get(f"{url}/", timeout=10).status_code == 200, 120, proc, log)
        bases = wait_for("/api/v1/base-models", lambda: requests.get(f"{url}/api/v1/base-models", timeout=10).json(),
                         60, proc, log)
        names = {b["name"] for b in bases["results"]}
        print(f"smoke: serving after {time.monotonic() - started:.0f} s; base models: {', '.join(sorted(names))}")
        if "nomoat/tiny-llama" not in names:
            fail(f"the tiny base model is not seeded (base models: {names})", log)

        # A worker that dies must come back: kill the uploads worker; the upload below needs it.
        workers = [pid for pid, cmd in descendants(proc.pid).items() if "celery" in cmd and "-Q uploads" in cmd
                   and "worker" in cmd]
        if not workers:
            fail("no uploads worker among make run's processes", log)
        os.kill(min(workers), signal.SIGKILL)
        wait_for("the supervisor to restart the uploads worker",
                 lambda: "restarting worker (uploads,federation)" in log.read_text(errors="replace"), 60, proc, log)
        print("smoke: the killed uploads worker was restarted")

        adapter = make_adapter(data_dir / "build")
        files = [("files", (p.name, p.read_bytes())) for p in sorted(adapter.iterdir()) if p.is_file()]
        upload = requests.post(f"{url}/api/v1/adapters/demo/smoke-adapter/versions", files=files,
                               data={"summary": "smoke"}, headers=auth, timeout=60)
        if upload.status_code != 202:
            fail(f"upload answered {upload.status_code}: {upload.text[:500]}", log)
        version_url = upload.json()["status_url"]

        def version_settled() -> dict | None:
            version = requests.get(version_url, headers=auth, timeout=10).json()
            return version if version["state"] in {"published", "rejected", "pending_review"} else None

        version = wait_for("the adapter to be validated", version_settled, FLOW_TIMEOUT, proc, log)
        if version["state"] != "published":
            fail(f"the adapter ended {version['state']}: {version.get('state_reason')}", log)
        print("smoke: adapter published")

        recipe = {"base_model": "nomoat/tiny-llama", "adapters": [{"adapter": "demo/smoke-adapter", "weight": 0.5}],
                  "method": "linear", "output": {"type": "merged", "dtype": "fp32"}}
        request = requests.post(f"{url}/api/v1/stacks", json=recipe, headers=auth, timeout=60)
        if request.status_code not in (200, 202):
            fail(f"POST /api/v1/stacks answered {request.status_code}: {request.text[:500]}", log)
        stack_url = request.json()["url"]
        stack_url = stack_url if stack_url.startswith("http") else url + stack_url

        def stack_settled() -> dict | None:
            stack = requests.get(stack_url, headers=auth, timeout=10).json()
            return stack if stack["state"] in {"ready", "failed"} else None

        stack = wait_for("the stack to be built", stack_settled, FLOW_TIMEOUT, proc, log)
        if stack["state"] != "ready":
            fail(f"the stack build failed: {stack.get('failure_reason')}", log)
        for file in stack["files"]:
            file_url = file["url"] if file["url"].startswith("http") else url + file["url"]
            response = requests.get(file_url, headers=auth, timeout=60)
            digest = hashlib.sha256(response.content).hexdigest()
            if response.status_code != 200 or response.headers.get("ETag") != f'"{digest}"' or digest != file["sha256"]:
                fail(f"{file['path']}: status {response.status_code}, ETag {response.headers.get('ETag')}, "
                     f"sha256 {digest}, listed {file['sha256']}", log)
        print(f"smoke: stack {stack['recipe_hash'][:12]} built and downloaded ({len(stack['files'])} files)")

        # Ctrl-C, as a terminal sends it: SIGINT to the whole foreground group.
        started_processes = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            fail("`make run` did not exit within 90 s of SIGINT", log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(pid) for pid in started_processes):
            time.sleep(0.5)
        left = {pid: cmd for pid, cmd in started_processes.items() if alive(pid)}
        if left:
            fail(f"processes outlived `make run`: {left}", log)
        if not port_is_free(port):
            fail(f"port {port} is still taken after `make run` exited", log)
        print(f"smoke: Ctrl-C stopped all {len(started_processes)} processes; port {port} is free")
        print(f"smoke passed in {time.monotonic() - started:.0f} s")
    finally:
        if proc.poll() is None:
            for pid in descendants(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
