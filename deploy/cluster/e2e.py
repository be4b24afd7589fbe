"""The cluster's end-to-end flow, run on its client host by `deploy/cluster.sh e2e` (through the proxy, over HTTPS).

Upload a small adapter as a plain user, wait for validation, approve it as a moderator (it is published), request a
stack build, wait for it, download every file of the stack in two Range requests and check each sha256 against
the listing and the ETag. Each step is printed with its time; the exit status is 0 only when every check passed.
`--summary FILE` writes the steps' times and the stack as JSON (tests/cluster and bench/RESULTS.md read it).
The fault tests use its pieces one at a time: `--publish-only`, `--request RECIPE.json`, `--wait URL --state S`,
`--show URL`, `--download URL`.

Environment (set by `deploy/cluster.sh client`): NOMOAT_ENDPOINT, REQUESTS_CA_BUNDLE, UPLOADER_TOKEN,
MODERATOR_TOKEN.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds for validation and for a build; the cluster's workers are idle when e2e runs
UPLOADER = "e2e-uploader"


class CheckFailed(Exception):
    """A step's result was not what the flow expects."""


class Hub:
    """The hub's API through the proxy, as one user (bearer token); non-2xx answers raise CheckFailed."""

    def __init__(self, endpoint: str, token: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.endpoint}{path}"

    def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        response = self.session.request(method, self.url(path), timeout=60, **kwargs)
        if response.status_code not in expect:
            raise CheckFailed(f"{method} {path} answered {response.status_code} (expected {expect}): "
                              f"{response.text[:400]}")
        return response


def wait_for(what: str, fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {str(value)[:400]}")
        time.sleep(0.5)


def make_adapter(folder: Path, *, seed: int, base_dir: Path | None, base_name: str) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from workers.engine.tiny import build_tiny_adapter, build_tiny_base

    base = base_dir or build_tiny_base(folder / "base")  # deterministic: the weights the hub seeded
    return build_tiny_adapter(base, folder / "adapter", seed=seed, base_model_name=base_name)


def upload(hub: Hub, adapter: Path, name: str) -> dict:
    files = [("files", (p.name, p.read_bytes())) for p in sorted(adapter.iterdir()) if p.is_file()]
    return hub.call("POST", f"/api/v1/adapters/{UPLOADER}/{name}/versions", files=files, data={"summary": "e2e"},
                    expect=(202,)).json()


def wait_validated(hub: Hub, status_url: str) -> dict:
    version = wait_for("validation", lambda: hub.call("GET", status_url).json(),
                       lambda v: v["state"] in {"pending_review", "published", "rejected"})
    if version["state"] == "rejected":
        raise CheckFailed(f"the adapter was rejected: {version.get('state_reason')}")
    return version


def approve(moderator: Hub, uploader: Hub, name: str, number: int, status_url: str) -> dict:
    """Find the version's review item, claim it, approve it; wait until the version is published."""
    def item() -> dict | None:
        page = moderator.call("GET", f"/api/v1/moderation/queue?uploader={UPLOADER}&page_size=100").json()
        return next((i for i in page["results"] if i["repository"] == f"{UPLOADER}/{name}" and i["version"] == number),
                    None)

    found = wait_for("the review item", item, lambda i: i is not None, timeout=60)
    moderator.call("POST", f"/api/v1/moderation/items/{found['id']}/claim")
    moderator.call("POST", f"/api/v1/moderation/items/{found['id']}/approve", json={"note": "e2e"})
    return wait_for("publication", lambda: uploader.call("GET", status_url).json(),
                    lambda v: v["state"] == "published", timeout=60)


def build_stack(hub: Hub, recipe: dict) -> dict:
    answer = hub.call("POST", "/api/v1/stacks", json=recipe, expect=(200, 202)).json()
    stack = wait_for("the stack build", lambda: hub.call("GET", answer["url"]).json(),
                     lambda s: s["state"] in {"ready", "failed"})
    if stack["state"] != "ready":
        raise CheckFailed(f"the stack build failed: {stack.get('failure_reason')}")
    return stack


def download_in_ranges(hub: Hub, file: dict) -> int:
    """Fetch the file as two Range requests; check status, Content-Range, ETag and the sha256. Returns the size."""
    size, half = file["size"], max(file["size"] // 2, 1)
    body = b""
    for first, last in ((0, half - 1), (half, size - 1)):
        if first > last:
            continue
        response = hub.call("GET", file["url"], headers={"Range": f"bytes={first}-{last}"}, expect=(206,))
        if response.headers.get("Content-Range") != f"bytes {first}-{last}/{size}":
            raise CheckFailed(f"{file['path']}: Content-Range {response.headers.get('Content-Range')!r}, expected "
                              f"'bytes {first}-{last}/{size}'")
        if response.headers.get("ETag") != f'"{file["sha256"]}"':
            raise CheckFailed(f"{file['path']}: ETag {response.headers.get('ETag')!r}, expected the sha256 "
                              f"{file['sha256']}")
        body += response.content
    digest = hashlib.sha256(body).hexdigest()
    if len(body) != size or digest != file["sha256"]:
        raise CheckFailed(f"{file['path']}: got {len(body)} bytes with sha256 {digest}, expected {size} bytes "
                          f"with {file['sha256']}")
    return size


def publish(uploader: Hub, moderator: Hub, *, seed: int, base_dir: Path | None, base_model: str,
            step: Callable[[str, Callable[[], Any]], Any]) -> str:
    """Upload an adapter, wait for validation, have a moderator approve it; returns its `owner/name`."""
    name = f"e2e-{seed}"
    with tempfile.TemporaryDirectory(prefix="nomoat-e2e-") as tmp:
        adapter = step("build the adapter locally", lambda: make_adapter(
            Path(tmp), seed=seed, base_dir=base_dir, base_name=base_model))
        uploaded = step("upload", lambda: upload(uploader, adapter, name))
    status_url = uploaded["status_url"]
    version = step("validation", lambda: wait_validated(uploader, status_url))
    if version["state"] != "published":
        step("approval by a moderator", lambda: approve(moderator, uploader, name, version["number"], status_url))
    return f"{UPLOADER}/{name}"


def recipe_for(adapter: str, base_model: str, *, weight: float = 0.5) -> dict:
    return {"base_model": base_model, "adapters": [{"adapter": adapter, "weight": weight}], "method": "linear",
            "output": {"type": "merged", "dtype": "fp32"}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", default="nomoat/tiny-llama", help="a base model the hub has")
    parser.add_argument("--base-dir", type=Path, help="its local folder (default: build the tiny model here)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 1_000_000,
                        help="the adapter's seed (default: from the clock, so that each run builds a new stack)")
    parser.add_argument("--summary", type=Path, help="write the steps' times and the stack (or the answer) as JSON")
    parser.add_argument("--publish-only", action="store_true", help="stop once the adapter is published")
    parser.add_argument("--request", type=Path, metavar="RECIPE.json",
                        help="only POST this recipe (no wait) and write the answer to --summary")
    parser.add_argument("--wait", metavar="STACK_URL", help="only wait until this stack is in --state")
    parser.add_argument("--state", default="ready", help="for --wait (default: ready)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="for --wait (default %(default)s s)")
    parser.add_argument("--show", metavar="STACK_URL", help="only write this stack's state to --summary")
    parser.add_argument("--download", metavar="STACK_URL", help="only check this ready stack's files (Range, sha256)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    endpoint = os.environ["NOMOAT_ENDPOINT"]
    uploader, moderator = Hub(endpoint, os.environ["UPLOADER_TOKEN"]), Hub(endpoint, os.environ["MODERATOR_TOKEN"])
    steps: dict[str, float] = {}
    result: dict[str, Any] = {"steps": steps}
    started = time.monotonic()

    def step(label: str, call: Callable[[], Any]) -> Any:
        began = time.monotonic()
        value = call()
        steps[label] = round(time.monotonic() - began, 2)
        print(f"e2e: {label}: {steps[label]:.2f} s", flush=True)
        return value

    try:
        if args.request:  # the fault tests' pieces: one request, one wait, one check each
            result["stack"] = uploader.call("POST", "/api/v1/stacks", json=json.loads(args.request.read_text()),
                                            expect=(200, 202)).json()
        elif args.wait:
            result["stack"] = step(f"stack {args.state}", lambda: wait_for(
                f"the stack to be {args.state}", lambda: uploader.call("GET", args.wait).json(),
                lambda s: s["state"] in {args.state, "failed"}, timeout=args.timeout))
            if result["stack"]["state"] != args.state:
                raise CheckFailed(f"the stack is {result['stack']['state']} "
                                  f"({result['stack'].get('failure_reason')}), expected {args.state}")
        elif args.show:
            result["stack"] = uploader.call("GET", args.show).json()
        elif args.download:
            stack = result["stack"] = uploader.call("GET", args.download).json()
            if stack["state"] != "ready":
                raise CheckFailed(f"the stack is {stack['state']}, expected ready")
            step("download with Range + sha256", lambda: sum(download_in_ranges(uploader, f) for f in stack["files"]))
        else:
            adapter = result["adapter"] = publish(uploader, moderator, seed=args.seed, base_dir=args.base_dir,
                                                  base_model=args.base_model, step=step)
            if not args.publish_only:
                result["recipe"] = recipe_for(adapter, args.base_model)
                stack = result["stack"] = step("stack build", lambda: build_stack(uploader, result["recipe"]))
                size = step("download with Range + sha256",
                            lambda: sum(download_in_ranges(uploader, f) for f in stack["files"]))
                print(f"e2e: stack {stack['recipe_hash'][:12]}: {len(stack['files'])} files, {size} bytes verified")
    except (CheckFailed, requests.RequestException) as exc:
        print(f"e2e FAILED after {time.monotonic() - started:.1f} s: {exc}", file=sys.stderr)
        return 1
    result["total"] = round(time.monotonic() - started, 2)
    print(f"e2e passed in {result['total']:.2f} s")
    if args.summary:
        args.summary.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
