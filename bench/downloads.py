"""Download throughput through the proxy against the disk's own read throughput, in the same run.

    .venv/bin/python bench/downloads.py                 # a 1 GiB adapter file, 3 rounds, embedded default
    .venv/bin/python bench/downloads.py --mib 256 --rounds 5

It seeds one published adapter whose weights are --mib MiB of random bytes into a fresh data dir (file blob store),
starts two gunicorn hubs with `make run`'s arguments (runhub's `web_server_argv`), one with BLOB_ACCEL_REDIRECT (a
download answers `X-Accel-Redirect` and no body) and one without (the hub streams the bytes from Python), and nginx
with deploy/nginx.conf as it is, TLS included, its `location /_blobs/` enabled as its comment says, in front of the
first (nginx also listens without TLS, to show what the cipher costs: curl decrypts on the same 2 cores). Each
round reads the blob file with `dd` (the disk's read throughput), then downloads it with curl through nginx and
from the streaming hub directly, each cold (the file's pages dropped from the page cache first with
posix_fadvise DONTNEED, so the bytes come from the disk) and warm (from the page cache). It prints the median MB/s
of each and its ratio to `dd` of the same kind. Bounded: loopback only, 8 × --rounds reads of --mib MiB.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(mib: int) -> tuple[str, Path]:
    """One published adapter whose weights are `mib` MiB of random bytes: its file's URL path and its blob's path."""
    import django

    django.setup()
    from django.core.management import call_command

    from hub.accounts.services import user_create
    from hub.catalog.blobstore import get_blob_store
    from hub.catalog.models import BaseModel, Version, VersionState
    from hub.catalog.services import blob_put_stream, repository_get_or_create, version_create

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command("seed_hub", skip_smollm2=True, no_users=True, verbosity=0)
    base = BaseModel.objects.get(name="nomoat/tiny-llama")
    owner = user_create(username="bench", password=None)
    card = f"---\nlicense: apache-2.0\nbase_model: {base.name}\n---\n\n# big\n".encode()
    with tempfile.TemporaryFile() as weights:
        for _ in range(mib):
            weights.write(os.urandom(1 << 20))
        weights.seek(0)
        blobs = {"README.md": blob_put_stream(stream=io.BytesIO(card)),
                 "adapter_model.safetensors": blob_put_stream(stream=weights)}
    repo = repository_get_or_create(kind="adapter", owner=owner, name="big", base_model=base)
    version = version_create(repository=repo, files=blobs, created_by=owner, base_model=base)
    Version.objects.filter(pk=version.pk).update(state=VersionState.PUBLISHED)
    blob_path = get_blob_store().local_path(blobs["adapter_model.safetensors"].sha256)
    return "/bench/big/resolve/main/adapter_model.safetensors", blob_path


def nginx_conf(directory: Path, *, port: int, http_port: int, upstream: int, blob_root: Path) -> Path:
    """deploy/nginx.conf with this run's ports, a self-signed certificate and its `location /_blobs/` enabled; its
    TLS server also listens without TLS on `http_port` (what nginx costs without the cipher)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(directory / "server.key"), "-out", str(directory / "server.pem")],
                   check=True, capture_output=True)
    site = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    site = re.sub(r"upstream nomoat_web \{.*?\}", f"upstream nomoat_web {{ server 127.0.0.1:{upstream}; keepalive 32; }}",
                  site, flags=re.S)
    site = re.sub(r"server \{\s*listen 80;.*?\}\s*", "", site, count=1, flags=re.S)  # no plain-HTTP redirect
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl;\n    listen 127.0.0.1:{http_port};")
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {directory / 'server.pem'};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {directory / 'server.key'};", site)
    enabled = f"location /_blobs/ {{\n        internal;\n        alias {blob_root}/;\n    }}"
    site, found = re.subn(r"# location /_blobs/ \{\s*#\s*internal;\s*#\s*alias \S+;\s*#\s*\}", enabled, site)
    if not found:
        sys.exit("deploy/nginx.conf no longer has the commented `location /_blobs/`: update bench/downloads.py")
    conf = directory / "nginx.conf"
    temp = directory / "tmp"
    temp.mkdir()
    conf.write_text(f"""worker_processes 2;
pid {directory / 'nginx.pid'};
error_log {directory / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{site}
}}
""")
    return conf


def drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def dd_mb_s(path: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
    return path.stat().st_size / 1e6 / (time.perf_counter() - started)


def curl_mb_s(url: str, size: int) -> float:
    out = subprocess.run(["curl", "-sSk", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
                         check=True, capture_output=True, text=True, timeout=600).stdout.split()
    status, received, seconds = out[0], int(out[1]), float(out[2])
    if status != "200" or received != size:
        sys.exit(f"{url} answered {status} with {received} of {size} bytes")
    return size / 1e6 / seconds


def wait_for(url: str, what: str, process: subprocess.Popen, log: Path) -> None:
    import ssl

    context = ssl._create_unverified_context()  # noqa: S323 - our own self-signed certificate, on loopback
    deadline = time.monotonic() + 60
    while True:
        try:
            urlopen(url, timeout=2, context=context).read()  # noqa: S310 - loopback
            return
        except OSError:  # not listening yet
            if time.monotonic() > deadline or process.poll() is not None:
                sys.exit(f"{what} did not answer; its log ends:\n{log.read_text()[-3000:] if log.exists() else ''}")
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="size of the adapter file in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("nginx", "curl", "dd", "openssl"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is missing (apt-get install {tool})")

    data_dir = Path(tempfile.mkdtemp(prefix="nomoat-downloads-"))
    data_dir.chmod(0o755)  # nginx's workers (nobody) read the blob store
    os.environ.update({"DJANGO_SETTINGS_MODULE": "hub.settings", "NOMOAT_DATA_DIR": str(data_dir), "DEBUG": "false",
                       "THROTTLE_ANONYMOUS_READS_PER_ADDRESS": "100000000/minute"})
    print(f"seeding a {args.mib} MiB adapter file into {data_dir}…", flush=True)
    path, blob = seed(args.mib)
    for parent in [*blob.relative_to(data_dir).parents][:-1]:
        (data_dir / parent).chmod(0o755)
    size = blob.stat().st_size

    from django.conf import settings

    from hub.catalog.management.commands.runhub import web_server_argv

    accel_port, stream_port, proxy_port, plain_port = free_port(), free_port(), free_port(), free_port()
    processes = []
    try:
        for port, accel in ((accel_port, "/_blobs/"), (stream_port, "")):
            log = data_dir / f"gunicorn-{port}.log"
            env = {**os.environ, "BLOB_ACCEL_REDIRECT": accel}
            processes.append(subprocess.Popen([*web_server_argv("127.0.0.1", str(port), workers="2")[:-2],
                                               "--access-logfile", "/dev/null"], cwd=REPO_ROOT, env=env,
                                              stdout=log.open("w"), stderr=subprocess.STDOUT))
            wait_for(f"http://127.0.0.1:{port}/static/hub.css", "gunicorn", processes[-1], log)
        blob_root = Path(settings.BLOB_STORE.removeprefix("file://"))
        proxy_dir = data_dir / "proxy"
        proxy_dir.mkdir()
        conf = nginx_conf(proxy_dir, port=proxy_port, http_port=plain_port, upstream=accel_port, blob_root=blob_root)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        processes.append(subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"]))
        wait_for(f"https://127.0.0.1:{proxy_port}/static/hub.css", "nginx", processes[-1], proxy_dir / "error.log")

        cases = {"disk (dd)": lambda: dd_mb_s(blob),
                 "through nginx (TLS, X-Accel-Redirect)": lambda: curl_mb_s(
                     f"https://127.0.0.1:{proxy_port}{path}", size),
                 "through nginx (no TLS, X-Accel-Redirect)": lambda: curl_mb_s(
                     f"http://127.0.0.1:{plain_port}{path}", size),
                 "hub streaming it (no proxy, Python)": lambda: curl_mb_s(f"http://127.0.0.1:{stream_port}{path}",
                                                                          size)}
        figures: dict[tuple[str, str], list[float]] = {}
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
              f"{size / 2**20:.0f} MiB file, {args.rounds} rounds", flush=True)
        for _ in range(args.rounds):
            for label, measure in cases.items():
                drop_from_page_cache(blob)
                figures.setdefault(("cold", label), []).append(measure())
                figures.setdefault(("warm", label), []).append(measure())
        print(f"{'cache':6} {'case':42} {'MB/s':>9} {'min':>9} {'max':>9} {'vs dd':>7}")
        for cache in ("cold", "warm"):
            disk = statistics.median(figures[(cache, "disk (dd)")])
            for label in cases:
                values = figures[(cache, label)]
                print(f"{cache:6} {label:42} {statistics.median(values):9.0f} {min(values):9.0f} {max(values):9.0f} "
                      f"{statistics.median(values) / disk:7.0%}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
