"""Benchmark: `nomoat pull`'s multi-source download against one plain HTTP stream, same file, same run.

Three loopback servers hold a random blob (256 MiB by default): "hub-a" and "hub-c" at --rate MiB/s each, "hub-b"
throttled to a tenth of that, and hub-c corrupts everything after the first third of the file. Measured:

- one plain HTTP stream (requests, whole file) from the throttled server alone, and from hub-a alone;
- the multi-source download (nomoat_cli.transfer.download_from_sources) from all three, each piece checked against
  its sha-256: wall time, bytes fetched, CPU seconds of the process, which source was banned;
- a resume: the same download interrupted after half the pieces, then run again: bytes fetched again.

The servers are tests/provenance/mirrors.py (the hub's own Django server is one more HTTP source of the same kind;
the suite's test_multi_source_pull runs the real hub). Usage:

    .venv/bin/python bench/multi_source_pull.py [--mib 256] [--rate 64]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from nomoat_cli import transfer  # noqa: E402 (after the path is set)
from nomoat_cli.client import Client  # noqa: E402
from tests.provenance.mirrors import Mirror, serving  # noqa: E402
from workers.engine.pieces import piece_length, piece_sha256  # noqa: E402


def plain_stream(url: str, dest: Path) -> float:
    started = time.perf_counter()
    with requests.get(url, stream=True, timeout=600) as response, open(dest, "wb") as out:
        for chunk in response.iter_content(1 << 20):
            out.write(chunk)
    return time.perf_counter() - started


def multi(remote: transfer.RemoteFile, pieces: transfer.Pieces, dest: Path, *, stop_after: int | None = None):
    accept = transfer.Swarm.accept
    count = [0]

    def counting(self, source, index, data, fd):
        ok = accept(self, source, index, data, fd)
        count[0] += 1
        if stop_after is not None and count[0] >= stop_after:
            raise KeyboardInterrupt
        return ok

    transfer.Swarm.accept = counting
    cpu, started = time.process_time(), time.perf_counter()
    try:
        stats = transfer.download_from_sources(Client("http://127.0.0.1:9"), remote, dest, pieces, progress=False)
    except KeyboardInterrupt:
        stats = None
    finally:
        transfer.Swarm.accept = accept
    return stats, time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rate", type=float, default=64.0, help="MiB/s of each unthrottled server")
    args = parser.parse_args()
    size = args.mib * 1024**2
    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    rate = args.rate * 1024**2
    hub_a, hub_b, hub_c = Mirror({sha: data}, bytes_per_second=rate), Mirror({sha: data}, bytes_per_second=rate / 10), \
        Mirror({sha: data}, bytes_per_second=rate, corrupt_from=size // 3)
    with tempfile.TemporaryDirectory() as tmp, serving(hub_a, hub_b, hub_c):
        work = Path(tmp)
        (work / "blob").write_bytes(data)
        length = piece_length(size)
        hashing = time.process_time()
        hashes = tuple(piece_sha256(work / "blob", length))
        hashing = time.process_time() - hashing
        urls = tuple(m.url.format(sha256=sha) for m in (hub_a, hub_b, hub_c))
        remote = transfer.RemoteFile(urls[0], "blob.bin", size, sha)
        pieces = transfer.Pieces(urls, length, hashes)

        throttled = plain_stream(urls[1], work / "plain-b")
        single = plain_stream(urls[0], work / "plain-a")
        sent_before = sum(m.sent for m in (hub_a, hub_b, hub_c))
        stats, seconds, cpu = multi(remote, pieces, work / "multi" / "blob.bin")
        sent = sum(m.sent for m in (hub_a, hub_b, hub_c)) - sent_before
        assert hashlib.sha256((work / "multi" / "blob.bin").read_bytes()).hexdigest() == sha

        half = len(hashes) // 2
        multi(remote, pieces, work / "resume" / "blob.bin", stop_after=half)
        before = sum(m.sent for m in (hub_a, hub_b, hub_c))
        _, resume_seconds, _ = multi(remote, pieces, work / "resume" / "blob.bin")
        again = sum(m.sent for m in (hub_a, hub_b, hub_c)) - before

    mib = size / 1024**2
    print(f"{mib:.0f} MiB, {len(hashes)} pieces of {length // 1024} KiB; servers: hub-a and hub-c {args.rate:g} MiB/s "
          f"(hub-c corrupts after the first third), hub-b {args.rate / 10:g} MiB/s")
    print(f"one plain stream from hub-b (throttled): {throttled:6.1f} s ({mib / throttled:5.1f} MiB/s)")
    print(f"one plain stream from hub-a:             {single:6.1f} s ({mib / single:5.1f} MiB/s)")
    print(f"multi-source from all three:             {seconds:6.1f} s ({mib / seconds:5.1f} MiB/s), "
          f"{sent / 1024**2:.1f} MiB sent by the servers, {cpu:.1f} CPU s in the client "
          f"(sha-256 of all pieces alone: {hashing:.2f} CPU s)")
    for source in stats or []:
        print(f"  {source.url.split('/blobs/')[0]}: {source.pieces} pieces {source.bytes / 1024**2:.1f} MiB "
              f"{source.banned}")
    print(f"resume after {half} of {len(hashes)} pieces: {resume_seconds:.1f} s, {again / 1024**2:.1f} MiB fetched "
          f"again for the {mib - half * length / 1024**2:.1f} MiB left")


if __name__ == "__main__":
    main()
