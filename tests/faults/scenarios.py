"""The faults, each run against a Cluster and measured: the tests assert on the figures, bench/faults.py prints them.

Outages (the database, the object store): steady traffic of uploads and downloads runs while the server is down for
`down` seconds and a `nomoat push` is started in the middle of it. Every answer is kept with its time, so the figures
say how many requests failed, whether each failure was a clean 503 with Retry-After, how long after the server came
back each kind of request succeeded again, and, after recovery, whether anything acknowledged was lost or half
recorded. Broker restart and worker death: how long after the fault a validation still completes.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests

from tests.cli.conftest import NOMOAT
from tests.conftest import wait_until
from tests.faults.cluster import Cluster
from tests.federation.hubs import TINY_BASE

WEIGHTS = "adapter_model.safetensors"
VALIDATED = {"published", "pending_review", "rejected"}
REQUEST_TIMEOUT = 30  # seconds; a request held longer than this counts as hung
PACE_SECONDS = 0.5  # between two rounds of traffic (an upload and a download)


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer came
    kind: str  # "upload", "download" or "page"
    status: int  # 0: no answer (connection error or timeout)
    retry_after: str | None
    number: int | None = None  # the version an accepted upload created

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def clean_refusal(self) -> bool:
        return self.status == 503 and bool(self.retry_after)


@dataclass
class Figures:
    fault: str
    down_seconds: float
    requests: int = 0  # sent while the server was down or had not yet recovered
    failed: int = 0  # of those, not answered 2xx
    unclean: int = 0  # of the failed, not a 503 with Retry-After (a 500, a hang, a dropped connection)
    recover_seconds: float = 0.0  # after the server came back, until every kind of request succeeded again
    lost: int = 0  # acknowledged work missing, half-recorded or not completed after recovery
    orphans: int = 0  # new stored blobs no row names (harmless: see hub/catalog/blobstore.py)
    leftovers: int = 0  # new temporary objects left under blobs/tmp/
    notes: list[str] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Traffic(threading.Thread):
    """Uploads of `folder` (its card varied each time, so each stores a new blob) as versions of demo/`repo`,
    downloads of a published file and the browse page, one of each every PACE_SECONDS, until stop()."""

    def __init__(self, cluster: Cluster, folder: Path, repo: str, download: tuple[str, str]) -> None:
        super().__init__(daemon=True)
        self.hub, self.folder, self.repo = cluster.hub, folder, repo
        self.download_path, self.download_sha256 = download
        self.answers: list[Answer] = []
        self.stopping = threading.Event()
        self.token = self.hub.token("demo")
        self.count = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            self.answers.append(self._upload())
            self.answers.append(self._download())
            self.answers.append(self._page())
            self.stopping.wait(PACE_SECONDS)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=2 * REQUEST_TIMEOUT + 10)

    def _upload(self) -> Answer:
        self.count += 1
        files = [("files", (p.name, p.read_bytes() + (f"\nupload {self.count}\n".encode() if p.name == "README.md"
                                                        else b""))) for p in sorted(self.folder.iterdir())]
        try:
            response = requests.post(f"{self.hub.url}/api/v1/adapters/demo/{self.repo}/versions", files=files,
                                     data={"base_model": TINY_BASE}, headers={"Authorization": f"Bearer {self.token}"},
                                     timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            return Answer(time.monotonic(), "upload", 0, None)
        number = response.json().get("number") if response.status_code == 202 else None
        return Answer(time.monotonic(), "upload", response.status_code, response.headers.get("Retry-After"), number)

    def _download(self) -> Answer:
        try:
            response = requests.get(f"{self.hub.url}{self.download_path}", timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            return Answer(time.monotonic(), "download", 0, None)
        status = response.status_code
        if status == 200 and hashlib.sha256(response.content).hexdigest() != self.download_sha256:
            status = 0  # bytes that are not the file: worse than no answer
        return Answer(time.monotonic(), "download", status, response.headers.get("Retry-After"))

    def _page(self) -> Answer:
        try:
            response = requests.get(f"{self.hub.url}/adapters/", timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            return Answer(time.monotonic(), "page", 0, None)
        return Answer(time.monotonic(), "page", response.status_code, response.headers.get("Retry-After"))


def version(cluster: Cluster, repo: str, number: int) -> dict:
    response = cluster.hub.api("GET", f"adapters/demo/{repo}/versions/{number}", token="demo")
    return response.json() if response.status_code == 200 else {}


def wait_validated(cluster: Cluster, repo: str, number: int, *, timeout: float) -> dict:
    state: dict = {}

    def validated() -> bool:
        state.clear()
        state.update(version(cluster, repo, number))
        return state.get("state") in VALIDATED

    wait_until(validated, timeout=timeout, interval=0.5, what=f"demo/{repo}@{number} to be validated")
    return state


def published_download(cluster: Cluster, folder: Path, repo: str) -> tuple[str, str]:
    """Upload `folder` as demo/`repo` and wait for it to be published; its weights' download path and sha256."""
    cluster.hub.publish(repo, folder)
    cluster.hub.wait_published(f"demo/{repo}", timeout=300)
    return f"/api/v1/adapters/demo/{repo}/versions/1/files/{WEIGHTS}", sha256_file(folder / WEIGHTS)


def push(cluster: Cluster, folder: Path, repo: str, home: Path) -> subprocess.Popen:
    """`nomoat push` of `folder` to demo/`repo`, in the background, with its own HOME (journal and config)."""
    env = {**os.environ, "NOMOAT_ENDPOINT": cluster.hub.url, "NOMOAT_TOKEN": cluster.hub.token("demo"),
           "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state")}
    return subprocess.Popen([str(NOMOAT), "push", str(folder), f"demo/{repo}", "--base-model", TINY_BASE,
                             "--chunk-size", "4096", "--timeout", "300"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def outage(cluster: Cluster, fault: str, *, folder: Path, push_folder: Path, download: tuple[str, str],
           down: float, home: Path) -> Figures:
    """`fault` ("database", "object store" or "cache and broker": Redis) down for `down` seconds under traffic and a
    push; then recovery."""
    stop, start = {"database": (cluster.pg.stop, cluster.pg.start),
                   "object store": (cluster.s3.stop, cluster.s3.start),
                   "cache and broker": (cluster.redis.stop, cluster.redis.start)}[fault]
    repo, push_repo = f"faults-{fault.replace(' ', '-')}", f"faults-push-{fault.replace(' ', '-')}"
    figures = Figures(fault, down)
    orphans_before, leftovers_before = orphan_blobs(cluster)
    traffic = Traffic(cluster, folder, repo, download)
    traffic.start()
    try:
        time.sleep(2)  # traffic flowing before the fault
        went_down = time.monotonic()
        stop()
        time.sleep(1)
        pushing = push(cluster, push_folder, push_repo, home)  # a push that meets the outage
        time.sleep(max(0.0, down - (time.monotonic() - went_down)))
        start()
        came_back = time.monotonic()

        def recovered() -> float | None:
            firsts = [min((a.at for a in traffic.answers if a.kind == kind and a.ok and a.at > came_back),
                          default=None) for kind in ("upload", "download", "page")]
            return None if None in firsts else max(firsts) - came_back

        figures.recover_seconds = wait_until(recovered, timeout=120, interval=0.2,
                                             what=f"uploads and downloads to succeed again after the {fault} outage")
    finally:
        traffic.stop()
    recovered_at = came_back + figures.recover_seconds
    during = [a for a in traffic.answers if went_down <= a.at <= recovered_at]
    figures.requests = len(during)
    figures.failed = sum(not a.ok for a in during)
    figures.unclean = sum(not a.ok and not a.clean_refusal for a in during)
    figures.notes += [f"{a.kind} answered {a.status or 'nothing'}" for a in during if not a.ok and not a.clean_refusal]
    # The push met the outage and must still complete, in the same run.
    output, _ = pushing.communicate(timeout=360)
    if pushing.returncode != 0:
        figures.lost += 1
        figures.notes.append(f"nomoat push exited {pushing.returncode}: {output.strip()[-600:]}")
    figures.lost += missing_or_half_recorded(cluster, repo, traffic.answers, folder)
    orphans, leftovers = orphan_blobs(cluster)
    figures.orphans, figures.leftovers = orphans - orphans_before, leftovers - leftovers_before
    return figures


def missing_or_half_recorded(cluster: Cluster, repo: str, answers: list[Answer], folder: Path) -> int:
    """Acknowledged uploads whose version is missing or does not serve every file it was given, plus rows anywhere
    that name no stored content (a version without files, a file row whose blob is not in the store)."""
    bad = 0
    expected = {p.name: sha256_file(p) for p in folder.iterdir() if p.name != "README.md"}
    for answer in answers:
        if answer.number is None:
            continue
        files = {f["path"]: f["sha256"] for f in version(cluster, repo, answer.number).get("files", [])}
        if "README.md" not in files or any(files.get(name) != digest for name, digest in expected.items()):
            bad += 1
    bad += cluster.sql("SELECT count(*) FROM catalog_version v WHERE NOT EXISTS "
                       "(SELECT 1 FROM catalog_versionfile f WHERE f.version_id = v.id)")[0][0]
    stored = {key.rsplit("/", 1)[-1] for key in cluster.stored_objects()}
    rows = {sha for (sha,) in cluster.sql("SELECT DISTINCT blob_id FROM catalog_versionfile")}
    return bad + len(rows - stored)


def orphan_blobs(cluster: Cluster) -> tuple[int, int]:
    """Stored objects no Blob row names (harmless: content-addressed, reused by the next upload of the same bytes),
    and temporary objects left under blobs/tmp/."""
    keys = cluster.stored_objects()
    rows = {sha for (sha,) in cluster.sql("SELECT sha256 FROM catalog_blob")}
    blobs = {key.rsplit("/", 1)[-1] for key in keys if "/tmp/" not in key}
    return len(blobs - rows), sum("/tmp/" in key for key in keys)


def claimed(cluster: Cluster, repo: str, number: int) -> str | None:
    """The version's state once a worker has claimed it (validating, or already validated), else None."""
    state = version(cluster, repo, number).get("state")
    return None if state in {None, "uploaded"} else state


def broker_restart(cluster: Cluster, folder: Path, *, running: bool) -> Figures:
    """Redis restarted (its queues emptied: no persistence) while a validation is queued (`running` False: the
    worker is stopped, so the message waits in Redis) or running; the validation must still complete."""
    hub, repo = cluster.hub, f"faults-broker-{'running' if running else 'queued'}"
    figures = Figures(f"Redis restarted, validation {'running' if running else 'queued'}", 0.0)
    if not running:
        hub.worker.stop()
    number = hub.publish(repo, folder)["number"]
    if running:
        seen = wait_until(lambda: claimed(cluster, repo, number), timeout=120, interval=0.05,
                          what=f"demo/{repo}@{number} to be claimed")
        figures.notes.append(f"state when Redis was restarted: {seen}")
    else:
        queued = redis.Redis.from_url(cluster.redis.url).llen("uploads")
        figures.notes.append(f"messages queued in Redis when it was restarted (and lost with it): {queued}")
    went_down = time.monotonic()
    cluster.redis.stop()
    cluster.redis.start()
    came_back = time.monotonic()
    figures.down_seconds = came_back - went_down
    if not running:
        hub.worker.start(hub.env)
    try:
        state = wait_validated(cluster, repo, number, timeout=240)["state"]
    except TimeoutError as exc:
        figures.lost, state = 1, str(exc)
    figures.recover_seconds = time.monotonic() - came_back
    figures.notes.append(f"demo/{repo}@{number}: {state}")
    if state not in VALIDATED:
        figures.lost = 1
    return figures


def worker_killed(cluster: Cluster, folder: Path, *, tries: int = 3) -> Figures:
    """A worker SIGKILLed (its whole process group) while it validates; the hub's other worker must finish the
    validation. The version is claimed by a worker of its own (the main one is stopped meanwhile) and killed once the
    version is `validating`; a validation quick enough to end before the kill is tried again with another upload."""
    hub = cluster.hub
    figures = Figures("worker SIGKILLed mid-validation", 0.0)
    for attempt in range(1, tries + 1):
        repo = f"faults-killed-{attempt}"
        hub.worker.stop()
        victim = hub.extra_worker(f"victim{attempt}")
        number = hub.publish(repo, folder)["number"]
        wait_until(lambda repo=repo, number=number: claimed(cluster, repo, number), timeout=120, interval=0.05,
                   what=f"demo/{repo}@{number} to be claimed by the victim worker")
        os.killpg(victim.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        state = version(cluster, repo, number).get("state")
        victim.stop()
        hub.worker.start(hub.env)
        if state != "validating":
            figures.notes.append(f"try {attempt}: validation ended ({state}) before the kill")
            continue
        try:
            state = wait_validated(cluster, repo, number, timeout=240)["state"]
        except TimeoutError:
            figures.lost = 1
        figures.recover_seconds = time.monotonic() - killed_at
        figures.notes.append(f"demo/{repo}@{number}: {state} (killed on try {attempt})")
        if state not in VALIDATED:
            figures.lost = 1
        return figures
    figures.lost = 1
    figures.notes.append("never caught a validation in progress")
    return figures
