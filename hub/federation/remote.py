"""Remote actors and peers as this hub knows them: a peer per base URL, each remote actor fetched (signed GET) and
cached with its keys and inboxes."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from hub.core.errors import ServiceError
from hub.federation.client import RemoteError, fetch_json
from hub.federation.httpsig import SignatureRefused
from hub.federation.models import Peer, RemoteActor


def base_url_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, no trailing slash (a Peer's key)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # a malformed IPv6 host, say
        parts = None
    if not parts or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ServiceError(f"url {url!r}: expected an http(s) URL", code="bad_url", status=400)
    return f"{parts.scheme}://{parts.netloc}".lower()


def peer_get_or_create(*, url: str) -> Peer:
    """The peer a URL belongs to, created (allowed, default policy) the first time it is seen."""
    base = base_url_of(url)
    try:
        with transaction.atomic():
            peer, _ = Peer.objects.get_or_create(base_url=base)
    except IntegrityError:
        peer = Peer.objects.get(base_url=base)
    return peer


def _http_url(value: object) -> str:
    """An http(s) URL from a remote document, or '' for anything else (never stored, never requested)."""
    if not isinstance(value, str) or len(value) > 500:
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    return value if parts.scheme in ("http", "https") and parts.netloc else ""


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value] if value else []


def remote_actor_get(*, url: str, refresh: bool = False) -> RemoteActor:
    """A remote actor (its key, inboxes), fetched with a signed GET and cached; `refresh` fetches it again."""
    url = url.split("#", 1)[0]
    if not _http_url(url):
        raise RemoteError(f"actor {url[:100]!r}: expected an http(s) URL of at most 500 characters")
    cached = RemoteActor.objects.filter(url=url).select_related("peer").first()
    if cached and not refresh:
        return cached
    document = fetch_json(url)
    if document.get("id") != url:
        raise RemoteError(f"GET {url}: the actor's id is {document.get('id')!r}, expected {url}")
    key = document.get("publicKey") or {}
    key = key[0] if isinstance(key, list) and key else key
    key = key if isinstance(key, dict) and len(str(key.get("id", ""))) <= 600 else {}
    endpoints = document.get("endpoints") if isinstance(document.get("endpoints"), dict) else {}
    peer = peer_get_or_create(url=url)
    fields = {
        "peer": peer, "key_id": str(key.get("id", "")), "public_key_pem": str(key.get("publicKeyPem", "")),
        "inbox_url": _http_url(document.get("inbox")), "shared_inbox_url": _http_url(endpoints.get("sharedInbox")),
        "outbox_url": _http_url(document.get("outbox")),
        "preferred_username": str(document.get("preferredUsername", ""))[:200], "fetched_at": timezone.now(),
        "proof_keys": {str(m["id"]): str(m.get("publicKeyMultibase", "")) for m in _as_list(document.get(
                       "assertionMethod")) if isinstance(m, dict) and m.get("id") and not m.get("revoked")},
    }
    actor, _ = RemoteActor.objects.update_or_create(url=url, defaults=fields)
    if document.get("type") == "Application" and peer.actor_url in ("", url):
        Peer.objects.filter(pk=peer.pk).update(actor_url=url, inbox_url=fields["inbox_url"],
                                               shared_inbox_url=fields["shared_inbox_url"],
                                               public_key_pem=fields["public_key_pem"])
    return actor


def public_key_for(key_id: str, refresh: bool) -> str:
    """The public PEM of a remote key id (its actor fetched on first use; `refresh` after a failed check)."""
    try:
        actor = remote_actor_get(url=key_id, refresh=refresh)
    except RemoteError as exc:
        raise SignatureRefused(401, "unknown_key", f"keyId {key_id}: could not fetch its actor ({exc})") from None
    if actor.key_id != key_id or not actor.public_key_pem:
        raise SignatureRefused(401, "unknown_key", f"keyId {key_id}: the actor {actor.url} publishes the key "
                                                   f"{actor.key_id or 'none'}")
    return actor.public_key_pem


def peer_software_refresh(*, peer: Peer) -> Peer:
    """What the peer runs, from its NodeInfo (`/.well-known/nodeinfo`, then the 2.x document); left as it was when
    the peer publishes none."""
    try:
        links = fetch_json(f"{peer.base_url}/.well-known/nodeinfo").get("links", [])
        href = next(str(link["href"]) for link in links if isinstance(link, dict) and link.get("href") and
                    str(link.get("rel", "")).startswith("http://nodeinfo.diaspora.software/ns/schema/2."))
        if urlsplit(href).netloc != urlsplit(peer.base_url).netloc:
            return peer
        software = fetch_json(href).get("software") or {}
    except (RemoteError, StopIteration, AttributeError):
        return peer
    peer.software = f"{software.get('name', '')} {software.get('version', '')}".strip()[:100]
    peer.save(update_fields=["software"])
    return peer
