"""The production topology as a real cluster (deploy/cluster.sh): up, the e2e flow, and hosts killed under load.

Each host is a network namespace (root and iproute2 needed; the module is skipped where namespaces cannot be made).
The tests run in order on one cluster: e2e on the tiny model; then a wider model (a 54 MB merged stack) whose
first build loses its builds host mid-build; then that stack pulled by `nomoat pull` over a slow link while a web
host is killed. `down` runs at the end whatever happened. Figures go to bench/RESULTS.md ("Cluster").

    .venv/bin/pytest tests/cluster -m cluster -x -q -s -p no:cacheprovider
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO_ROOT / "deploy" / "cluster.sh"
WIDE_BASE = "cluster/wide-llama"
# hidden 512, 4 layers, vocab 8192: 13.6 M parameters, so a merged fp32 stack is one 54 MB file, large enough that
# a download through a 32 Mbit/s link is still running when a web host dies, and small enough to build in seconds.
WIDE_SHAPE = {"hidden_size": 512, "intermediate_size": 1024, "num_layers": 4, "num_heads": 8, "num_kv_heads": 4,
              "vocab_size": 8192}

pytestmark = pytest.mark.cluster


def _namespaces_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"nmt-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"this machine cannot make network namespaces: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], check=True)
    return None


_reason = _namespaces_unavailable()
if _reason:
    pytest.skip(_reason, allow_module_level=True)


class Cluster:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.env = {**os.environ, "CLUSTER_DIR": str(directory),
                    # SmolLM2 is not needed here: converting and storing it would add minutes to `up`.
                    "CLUSTER_SEED_ARGS": "--no-users --skip-smollm2", "CLUSTER_WEB_WORKERS": "2"}
        self.figures: dict[str, object] = {}

    def run(self, *args: str, timeout: float = 300, check: bool = True, stdin: str | None = None
            ) -> subprocess.CompletedProcess:
        done = subprocess.run([str(CLUSTER_SH), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, input=stdin)
        print(done.stdout, done.stderr, sep="\n")
        if check and done.returncode != 0:
            logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
                             for p in sorted(self.dir.glob("*/process.log")))
            pytest.fail(f"cluster.sh {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n{logs}")
        return done

    def client_json(self, *args: str, timeout: float = 300) -> dict:
        """deploy/cluster/e2e.py on the client host with --summary; its JSON."""
        summary = self.dir / "client" / f"summary-{time.monotonic_ns()}.json"
        summary.parent.mkdir(parents=True, exist_ok=True)
        self.run("e2e", *args, "--summary", str(summary), timeout=timeout)
        return json.loads(summary.read_text())

    def proxy_log(self, name: str) -> list[str]:
        log = self.dir / "proxy" / name
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    def answered_5xx(self, since: int) -> int:
        """Answers of 500 and above the proxy sent its clients after its access log's first `since` lines."""
        return sum(1 for line in self.proxy_log("access.log")[since:] if line.split('"')[2].split()[0] >= "500")

    def netns(self, host: str, *command: str) -> str:
        return subprocess.run(["ip", "netns", "exec", f"nmt-{host}", *command], capture_output=True, text=True,
                              check=True).stdout


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    data = Path(os.environ.get("NOMOAT_DATA_DIR", REPO_ROOT / "var"))
    cluster = Cluster(data / "cluster")
    cluster.run("down", timeout=120)
    try:
        started = time.monotonic()
        cluster.run("up", timeout=900)
        cluster.figures["up_seconds"] = round(time.monotonic() - started, 1)
        yield cluster
    finally:
        cluster.run("throttle", "client", "off", check=False)
        cluster.run("throttle", "builds", "off", check=False)
        cluster.run("status", check=False)
        cluster.run("down", timeout=120, check=False)
        print(f"cluster figures: {json.dumps(cluster.figures)}")


@pytest.fixture(scope="module")
def wide_adapter(cluster: Cluster) -> dict:
    """A wider base model registered on the hub, and a published adapter for it (its folder is shared by hosts)."""
    sys.path.insert(0, str(REPO_ROOT))
    from workers.engine.tiny import build_tiny_base

    base_dir = cluster.dir / "shared" / "models" / "wide-llama"
    build_tiny_base(base_dir, name=WIDE_BASE, **WIDE_SHAPE)
    cluster.run("manage", "shell", stdin=(
        "from pathlib import Path\n"
        "from hub.catalog.models import BaseModel\n"
        "from hub.catalog.services import base_model_register\n"
        f"if not BaseModel.objects.filter(name={WIDE_BASE!r}).exists():\n"
        f"    base_model_register(name={WIDE_BASE!r}, model_dir=Path({str(base_dir)!r}), license='apache-2.0',\n"
        "                        description='A wider tiny Llama for the cluster tests.')\n"))
    published = cluster.client_json("--publish-only", "--base-model", WIDE_BASE, "--base-dir", str(base_dir),
                                    "--seed", "11")
    return {"adapter": published["adapter"], "base_dir": base_dir}


def test_up_and_e2e_through_the_proxy(cluster: Cluster) -> None:
    status = cluster.run("status").stdout
    for host in ("db", "broker", "s3", "web1", "web2", "proxy", "uploads", "builds", "evals", "training",
                 "federation", "beat"):
        line = next(line for line in status.splitlines() if line.startswith(f"{host} "))
        assert " alive " in line, f"{host} is not alive after up: {line}"
    summary = cluster.client_json()
    assert summary["stack"]["state"] == "ready"
    assert summary["stack"]["files"], "the e2e stack has no files"
    cluster.figures["e2e_steps"] = summary["steps"]


def _upstream_connections(cluster: Cluster) -> dict[str, str]:
    """The proxy's TCP connections to the web hosts' :8000: local port → state."""
    lines = cluster.netns("proxy", "ss", "-Htan", "dport", "=", ":8000").splitlines()
    return {line.split()[3]: line.split()[0] for line in lines}


def test_proxy_keeps_its_connections_to_the_web_hosts_alive(cluster: Cluster) -> None:
    """One connection per request to gunicorn (nginx's default `Connection: close` upstream) cost three quarters of
    the proxy's throughput: 100 requests must leave (almost) no upstream connection closed behind them."""
    before = _upstream_connections(cluster)
    url = "https://hub.cluster.test/api/v1/base-models"
    cluster.run("client", "curl", "-sSf", "--cacert", str(cluster.dir / "ca" / "ca.pem"), "-o", "/dev/null", *[url] * 100)
    closed = [port for port, state in _upstream_connections(cluster).items()
              if state == "TIME-WAIT" and port not in before]
    assert len(closed) < 10, f"the proxy opened and closed {len(closed)} connections to gunicorn for 100 requests"


def test_builds_host_killed_mid_build_is_finished_by_the_next_worker(cluster: Cluster, wide_adapter: dict) -> None:
    recipe = cluster.dir / "client" / "wide-recipe.json"
    recipe.write_text(json.dumps({"base_model": WIDE_BASE, "adapters": [{"adapter": wide_adapter["adapter"],
                                                                          "weight": 0.5}],
                                  "method": "linear", "output": {"type": "merged", "dtype": "fp32"}}))
    # A slow link to the builds host keeps the build reading its base model from the object store for a while,
    # so the kill lands mid-build rather than racing a two-second build.
    cluster.run("throttle", "builds", "16mbit")
    answer = cluster.client_json("--request", str(recipe))["stack"]
    assert answer["state"] not in {"ready", "failed"}, f"the wide stack was not a new build: {answer}"
    url = answer["url"]
    cluster.client_json("--wait", url, "--state", "running", "--timeout", "120")
    requests_before = len(cluster.proxy_log("access.log"))
    cluster.run("kill", "builds")
    killed = time.monotonic()
    cluster.run("throttle", "builds", "off")
    during = cluster.client_json("--show", url)["stack"]
    assert during["state"] != "ready" and during["files"] == [], f"a build that died serves files: {during}"

    cluster.run("start", "builds")  # the host comes back (a replacement machine would do the same)
    ready = cluster.client_json("--wait", url, "--state", "ready", "--timeout", "240")["stack"]
    recovered = time.monotonic() - killed
    checked = cluster.client_json("--download", url)
    assert checked["stack"]["recipe_hash"] == answer["recipe_hash"]
    assert [f["sha256"] for f in ready["files"]] == [f["sha256"] for f in checked["stack"]["files"]]
    cluster.figures["builds_kill"] = {"seconds_to_ready_after_kill": round(recovered, 1),
                                      "requests_failed": cluster.answered_5xx(requests_before)}
    wide_adapter["stack"] = ready
    wide_adapter["recipe"] = recipe


def test_web_host_killed_mid_pull_resumes_through_the_other(cluster: Cluster, wide_adapter: dict) -> None:
    stack = wide_adapter.get("stack")
    if stack is None:
        pytest.fail("the wide stack was not built (the builds fault test failed before it)")
    big = max(stack["files"], key=lambda f: f["size"])
    assert big["size"] > 32 * 1024**2, f"the largest stack file is {big['size']} bytes: too small to kill mid-pull"
    recipe_yaml = wide_adapter["recipe"].with_suffix(".yaml")
    recipe_yaml.write_text(wide_adapter["recipe"].read_text())  # JSON is YAML; `nomoat pull` wants the suffix
    out, baseline_out = cluster.dir / "client" / "pulled", cluster.dir / "client" / "pulled-baseline"
    for folder in (out, baseline_out):  # an earlier run's files would make `nomoat pull` a no-op
        shutil.rmtree(folder, ignore_errors=True)
    errors_before, requests_before = len(cluster.proxy_log("error.log")), len(cluster.proxy_log("access.log"))
    # A slow client link with small socket buffers on the way (each host has its own, being its own namespace):
    # otherwise a whole 4 MiB range leaves web1 into kernel buffers at once and no kill ever cuts a body.
    for host in ("client", "proxy", "web1", "web2"):
        cluster.netns(host, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 65536 131072",
                      "net.ipv4.tcp_wmem=4096 65536 131072")
    cluster.run("throttle", "client", "32mbit")
    # The baseline, in the same conditions: the same pull with no fault.
    began = time.monotonic()
    cluster.run("client", "nomoat", "-q", "pull", str(recipe_yaml), "-o", str(baseline_out))
    baseline = time.monotonic() - began
    began = time.monotonic()
    pull = subprocess.Popen([str(CLUSTER_SH), "client", "nomoat", "-q", "pull", str(recipe_yaml), "-o", str(out)],
                            env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        # Kill web1 while it is still writing a body: one of its :8000 connections has had bytes queued to send
        # for 0.4 s on end. A small file's response sits in the kernel's buffers too, but they drain to the 32 Mbit
        # client in under 0.2 s, and a kill then cuts nothing (the kernel still sends what was written).
        queued_since: dict[str, float] = {}
        while not any(time.monotonic() - since >= 0.4 for since in queued_since.values()):
            assert pull.poll() is None, f"the pull ended before web1 served any of it: {pull.communicate()[0]}"
            assert time.monotonic() < deadline, "web1 sent no long body of the pull within 120 s"
            now = time.monotonic()
            sockets = [line.split() for line in cluster.netns(
                "web1", "ss", "-Htn", "state", "established", "sport", "=", ":8000").splitlines()]
            queued = {peer for _, send_q, _, peer, *_ in sockets if int(send_q) > 0}
            queued_since = {peer: queued_since.get(peer, now) for peer in queued}
            time.sleep(0.05)
        cluster.run("kill", "web1")
        killed = time.monotonic()
        output, _ = pull.communicate(timeout=300)
    finally:
        if pull.poll() is None:
            pull.kill()
    finished, faulted = time.monotonic() - killed, time.monotonic() - began
    print(output)
    assert pull.returncode == 0, f"nomoat pull failed after web1 was killed:\n{output}"
    digest = hashlib.sha256((out / big["path"]).read_bytes()).hexdigest()
    assert digest == big["sha256"]
    errors = cluster.proxy_log("error.log")[errors_before:]
    cut = [line for line in errors if "prematurely closed" in line]
    refused = [line for line in errors if "connect() failed" in line]
    assert cut, f"no download was cut off by the kill (nginx logged: {errors})"
    cluster.figures["web_kill"] = {"pull_seconds_without_fault": round(baseline, 1),
                                   "pull_seconds_with_web1_killed": round(faulted, 1),
                                   "seconds_from_kill_to_verified_file": round(finished, 1),
                                   "downloads_cut_and_resumed": len(cut), "requests_sent_on_to_web2": len(refused),
                                   "requests_failed": cluster.answered_5xx(requests_before)}
    cluster.run("throttle", "client", "off")
    for host in ("client", "proxy", "web1", "web2"):
        cluster.netns(host, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 131072 6291456",
                      "net.ipv4.tcp_wmem=4096 16384 4194304")
    cluster.run("start", "web1")
    cluster.client_json("--download", stack["url"])  # and both web hosts serve again
