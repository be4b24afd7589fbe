"""The peer policies that do not mirror at once, on three real hubs through their public interfaces: `metadata`
(the item is listed with its origin and its files redirect there; nothing is held) and `on_demand` (listed, then
fetched, checked and validated on the first download, and served from the follower after that)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import wait_until
from tests.federation.hubs import Hub, Network

pytestmark = [pytest.mark.federation]
WEIGHTS = "adapter_model.safetensors"


def results(body: object) -> list[dict]:
    return body["results"] if isinstance(body, dict) else list(body)


def set_mode(hub: Hub, peer_url: str, mode: str) -> None:
    [peer] = [p for p in results(hub.api("GET", "federation/peers").json()) if p["base_url"] == peer_url]
    changed = hub.api("PATCH", f"federation/peers/{peer['id']}", json={"mode": mode})
    assert changed.status_code == 200 and changed.json()["mode"] == mode, changed.text


@pytest.fixture(scope="module")
def modes(hubs: Network) -> Iterator[Network]:
    """A follows B on demand, C follows B for metadata only (both back to `mirror` afterwards)."""
    a, b, c = hubs.a, hubs.b, hubs.c
    for hub in (a, c):
        made = hub.api("POST", "federation/follows", json={"url": b.url})
        assert made.status_code in (200, 201, 202), made.text
        wait_until(lambda hub=hub, made=made: hub.api("GET", f"federation/follows/{made.json()['id']}").json()[
            "state"] == "accepted", timeout=120, what=f"hub {hub.name}'s follow of B to be accepted")
    set_mode(a, b.url, "on_demand")
    set_mode(c, b.url, "metadata")
    try:
        yield hubs
    finally:
        set_mode(a, b.url, "mirror")
        set_mode(c, b.url, "mirror")


def listed(hub: Hub, name: str) -> dict | None:
    return next((item for item in hub.api("GET", "federation/items", token=None).json()["results"]
                 if item.get("name") == f"demo/{name}"), None)


def test_metadata_lists_with_the_origin_and_on_demand_fetches_on_first_download(modes: Network, make_adapter):
    a, b, c = modes.a, modes.b, modes.c
    b.publish("fed-lazy", make_adapter(rank=4, alpha=8, seed=331))
    on_b = {f["path"]: f["sha256"] for f in b.wait_published("demo/fed-lazy")["files"]}
    mirrored = f"{b.mirrored('demo')}/fed-lazy"

    # C: listed with its origin, the files held at B; a download is redirected there and gets B's bytes.
    item = wait_until(lambda: listed(c, "fed-lazy"), timeout=240, interval=1, what="demo/fed-lazy listed on C")
    assert item["mode"] == "metadata" and item["origin"]["hub"] == b.url and item["local"] is None
    files = {f["path"]: f for f in item["files"]}
    assert {p: f["sha256"] for p, f in files.items()} == {p: s for p, s in on_b.items()
                                                          if not p.startswith("attestations/")}
    assert not any(f["held_here"] for f in files.values())
    redirect = requests.get(f"{c.url}{files[WEIGHTS]['url']}", allow_redirects=False, timeout=60)
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith(b.url), redirect.text
    assert hashlib.sha256(requests.get(f"{c.url}{files[WEIGHTS]['url']}", timeout=60).content).hexdigest() == \
        on_b[WEIGHTS]
    # ...and in C's catalog as a listed version: its origin named, none of its files held on C.
    on_c = c.api("GET", f"adapters/{mirrored}/versions/1", token=None).json()
    assert on_c["state"] == "listed" and on_c["origin"]["hub"] == b.url
    assert {f["path"] for f in on_c["files"]} == set(files) and not any(f["held_here"] for f in on_c["files"])
    found = c.api("GET", "adapters", token=None, params={"search": "fed-lazy", "hub": b.url}).json()["results"]
    assert [r["full_name"] for r in found] == [mirrored]

    # A: listed, nothing fetched until someone asks; the first download starts the fetch (503, Retry-After), and
    # once validated the file is served from A itself.
    item = wait_until(lambda: listed(a, "fed-lazy"), timeout=240, interval=1, what="demo/fed-lazy listed on A")
    assert item["mode"] == "on_demand" and item["state"] == "listed"
    assert a.api("GET", f"adapters/{mirrored}/versions/1", token=None).json()["state"] == "listed"
    url = f"{a.url}{next(f['url'] for f in item['files'] if f['path'] == WEIGHTS)}"
    first = requests.get(url, allow_redirects=False, timeout=60)
    assert first.status_code == 503 and int(first.headers["Retry-After"]) > 0, first.text
    local = wait_until(lambda: (r := requests.get(url, allow_redirects=False, timeout=60)).status_code == 302
                       and r.headers["Location"], timeout=240, interval=2, what="the on-demand fetch on A")
    assert local == f"/api/v1/adapters/{mirrored}/versions/1/files/{WEIGHTS}"
    assert hashlib.sha256(requests.get(f"{a.url}{local}", timeout=60).content).hexdigest() == on_b[WEIGHTS]
    held = {f["path"]: f["sha256"] for f in a.api("GET", f"adapters/{mirrored}/versions/1", token=None).json()[
        "files"]}
    assert held["model.sig"] == on_b["model.sig"]  # B's signature kept, as for a mirror
    assert listed(a, "fed-lazy")["local"] == f"{mirrored}@1"


def test_an_item_listed_on_b_reaches_c_by_announce_with_a_as_its_origin(modes: Network, make_adapter):
    """B lists A's item (metadata) and re-shares it as it re-shares a mirrored one: C, which follows only B, hears
    of it by B's Announce of A's signed Create and lists it as A's (a Create whose proof is not A's is refused)."""
    a, b, c = modes.a, modes.b, modes.c
    made = b.api("POST", "federation/follows", json={"url": a.url})
    assert made.status_code in (200, 201, 202), made.text
    wait_until(lambda: b.api("GET", f"federation/follows/{made.json()['id']}").json()["state"] == "accepted",
               timeout=120, what="hub B's follow of A to be accepted")
    set_mode(b, a.url, "metadata")
    try:
        a.publish("fed-relisted", make_adapter(rank=4, alpha=8, seed=337))
        on_a = {f["path"]: f["sha256"] for f in a.wait_published("demo/fed-relisted")["files"]}
        on_b = wait_until(lambda: listed(b, "fed-relisted"), timeout=240, interval=1,
                          what="demo/fed-relisted listed on B")
        assert on_b["mode"] == "metadata" and on_b["origin"]["hub"] == a.url
        on_c = wait_until(lambda: listed(c, "fed-relisted"), timeout=240, interval=1,
                          what="demo/fed-relisted listed on C, announced by B")
        assert on_c["mode"] == "metadata" and on_c["origin"]["hub"] == a.url and on_c["origin"]["owner"] == "demo"
        files = {f["path"]: f for f in on_c["files"]}
        assert {p: f["sha256"] for p, f in files.items()} == {p: s for p, s in on_a.items()
                                                              if not p.startswith("attestations/")}
        assert files[WEIGHTS]["origin_url"].startswith(a.url)  # held at A, its origin, not at B
        found = c.api("GET", "adapters", token=None, params={"search": "fed-relisted", "hub": a.url}).json()
        assert [r["full_name"] for r in found["results"]] == [f"{a.mirrored('demo')}/fed-relisted"]
    finally:
        set_mode(b, a.url, "mirror")
