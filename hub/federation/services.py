"""Every write of federation: peers and their policies, remote actors' cached keys, follows both ways."""

from __future__ import annotations

import logging
import re
import uuid
from urllib.parse import urlsplit

from celery import current_app
from django.db import transaction
from django.utils import timezone

from hub.accounts.models import User
from hub.core.errors import ServiceError
from hub.federation import actors
from hub.federation.client import RemoteError, signed_get
from hub.federation.delivery import activity_publish
from hub.federation.keys import actor_key, actor_key_rotate, retired_keys
from hub.federation.models import (
    ActorKey,
    Follow,
    Follower,
    FollowState,
    KeyKind,
    Peer,
    PeerState,
    RemoteActor,
    RetiredActorKey,
)
from hub.federation.remote import (
    base_url_of,
    peer_get_or_create,
    peer_software_refresh,
    public_key_for,
    remote_actor_get,
)

# Re-exported: these lived here first, and callers outside remote.py use them from services.
__all__ = ["base_url_of", "peer_get_or_create", "public_key_for", "remote_actor_get"]

log = logging.getLogger("hub.federation")
POLICY_FIELDS = ("state", "mode", "namespaces_allow", "namespaces_block", "licenses", "max_bytes", "review",
                 "takedowns")


def webfinger_actor(*, base_url: str, name: str) -> str | None:
    """The actor WebFinger names for acct:<name>@<host of base_url> on that server, or None."""
    host = urlsplit(base_url).netloc
    try:
        response = signed_get(f"{base_url}/.well-known/webfinger?resource=acct:{name}@{host}",
                              accept="application/jrd+json")
        if response.status_code == 200:
            for link in response.json().get("links", []):
                if link.get("rel") == "self" and link.get("href"):
                    return str(link["href"])
    except (RemoteError, ValueError, AttributeError):
        pass
    return None


HANDLE_RE = re.compile(r"^@?(?P<user>[^@/\s]+)@(?P<host>[^@/\s]+)$")


def follow_target(url: str) -> tuple[str, str]:
    """(actor URL, namespace) of what a follow request names: a hub base URL (its hub actor: WebFinger
    acct:hub@host, else {base}/federation/actor), `alice@host:port` (WebFinger, else the nomoat namespace URL; the
    scheme is this hub's own), a nomoat namespace `{base}/federation/users/alice`, or any actor URL (namespace '')."""
    handle = HANDLE_RE.match(url.strip())
    if handle:
        base = f"{urlsplit(actors.public_url()).scheme}://{handle['host']}".lower()
        if handle["user"] == actors.HUB_ACTOR_NAME:
            return webfinger_actor(base_url=base, name=actors.HUB_ACTOR_NAME) or f"{base}/federation/actor", ""
        found = webfinger_actor(base_url=base, name=handle["user"])
        return found or f"{base}/federation/users/{handle['user']}", handle["user"]
    base = base_url_of(url)
    path = urlsplit(url.strip()).path.rstrip("/")
    if path in ("", "/"):
        return webfinger_actor(base_url=base, name=actors.HUB_ACTOR_NAME) or f"{base}/federation/actor", ""
    match = re.match(r"^/federation/users/(?P<user>[^/]+)$", path)
    if match:
        return f"{base}{path}", match["user"]
    return f"{base}{path}", ""  # {base}/federation/actor, or another server's actor URL


def follow_create(*, url: str, by: User | None) -> Follow:
    """Follow a peer hub or one of its namespaces: a pending Follow, our Follow activity delivered to its inbox.
    Following again what is already followed returns the existing follow (sent again when it was rejected)."""
    actor_url, namespace = follow_target(url)
    if actors.actor_from_url(actor_url)[0]:
        raise ServiceError(f"url {url!r}: that is this hub", code="self_follow", status=400)
    peer = peer_get_or_create(url=actor_url)
    if peer.state == PeerState.BLOCKED:
        raise ServiceError(f"{peer.base_url} is blocked: unblock it before following it", code="peer_blocked",
                           status=409)
    try:
        remote = remote_actor_get(url=actor_url)
    except RemoteError as exc:
        raise ServiceError(f"url {url!r}: could not fetch the actor {actor_url}: {exc}", code="peer_unreachable",
                           status=502) from None
    if not peer.software:
        peer_software_refresh(peer=peer)
    existing = Follow.objects.filter(actor_url=actor_url).first()
    if existing and existing.state != FollowState.REJECTED:
        return existing
    activity_id = actors.absolute(f"/federation/activities/{uuid.uuid4()}")
    with transaction.atomic():
        if existing:
            existing.state, existing.activity_id, existing.updated_at = FollowState.PENDING, activity_id, timezone.now()
            existing.save(update_fields=["state", "activity_id", "updated_at"])
            follow = existing
        else:
            follow = Follow.objects.create(peer=peer, namespace=namespace, actor_url=actor_url,
                                           activity_id=activity_id, created_by=by)
        activity_publish(actor=actors.HUB_ACTOR_NAME, activity={
            "id": activity_id, "type": "Follow", "object": actor_url, "to": [actor_url]},
            inboxes=[remote.inbox_url or remote.shared_inbox_url], public=False)
    log.info("following %s (%s)", actor_url, follow.state)
    return follow


def follow_delete(*, follow: Follow) -> None:
    """Unfollow: an Undo of our Follow delivered to the peer, and the follow forgotten."""
    remote = RemoteActor.objects.filter(url=follow.actor_url).first()
    with transaction.atomic():
        if remote and (remote.inbox_url or remote.shared_inbox_url):
            activity_publish(actor=actors.HUB_ACTOR_NAME, activity={
                "type": "Undo", "to": [follow.actor_url],
                "object": {"id": follow.activity_id, "type": "Follow", "actor": actors.actor_url(None),
                           "object": follow.actor_url}},
                inboxes=[remote.inbox_url or remote.shared_inbox_url], public=False)
        follow.delete()
    log.info("unfollowed %s", follow.actor_url)


def follow_answered(*, peer: Peer, activity: dict, accepted: bool) -> Follow | None:
    """A peer's Accept or Reject of our Follow (matched by the Follow's id, and sent by the actor followed)."""
    inner = activity.get("object")
    follow_id = inner.get("id") if isinstance(inner, dict) else inner
    follow = Follow.objects.filter(activity_id=str(follow_id), actor_url=activity.get("actor")).first()
    if follow is None:
        log.warning("%s from %s answers no follow of ours (%s)", activity.get("type"), activity.get("actor"),
                    follow_id)
        return None
    follow.state = FollowState.ACCEPTED if accepted else FollowState.REJECTED
    follow.updated_at = timezone.now()
    follow.save(update_fields=["state", "updated_at"])
    if accepted:
        transaction.on_commit(lambda: current_app.send_task("federation.catch_up_follow", args=[follow.pk],
                                                            queue="federation"))
    return follow


def follower_add(*, peer: Peer, activity: dict, user: User | None) -> Follower:
    """A remote actor's Follow of one of our actors: a Follower (accepted unless the peer is blocked), and an
    Accept (or Reject) delivered back to its inbox."""
    remote = remote_actor_get(url=str(activity["actor"]))
    accepted = peer.state != PeerState.BLOCKED
    state = FollowState.ACCEPTED if accepted else FollowState.REJECTED
    with transaction.atomic():
        follower, _ = Follower.objects.update_or_create(
            actor_url=remote.url, user=user,
            defaults={"inbox_url": remote.inbox_url, "shared_inbox_url": remote.shared_inbox_url, "peer": peer,
                      "state": state, "activity_id": str(activity["id"])})
        activity_publish(actor=user.username if user else actors.HUB_ACTOR_NAME, activity={
            "type": "Accept" if accepted else "Reject", "to": [remote.url],
            "object": {"id": activity["id"], "type": "Follow", "actor": remote.url, "object": activity["object"]}},
            inboxes=[remote.inbox_url or remote.shared_inbox_url], public=False)
    log.info("%s follows %s: %s", remote.url, user.username if user else "the hub", state)
    return follower


def follower_remove(*, activity: dict) -> int:
    """A remote actor's Undo of its Follow: its Follower row goes (only the one its Follow made)."""
    inner = activity.get("object")
    follow_id = inner.get("id") if isinstance(inner, dict) else inner
    removed, _ = Follower.objects.filter(actor_url=activity.get("actor"), activity_id=str(follow_id)).delete()
    return removed


def peer_update(*, peer: Peer, changes: dict) -> Peer:
    """Change a peer's policy or state (`changes` holds only POLICY_FIELDS, already validated)."""
    for name, value in changes.items():
        if name not in POLICY_FIELDS:
            raise ServiceError(f"{name}: not a peer policy field (expected one of {', '.join(POLICY_FIELDS)})",
                               code="bad_field", status=400)
        setattr(peer, name, value)
    peer.save(update_fields=list(changes))
    log.info("peer %s updated: %s", peer.base_url, ", ".join(f"{k}={v!r}" for k, v in changes.items()))
    return peer


def peer_block(*, url: str, blocked: bool = True) -> Peer:
    """Block (or unblock) a peer: a blocked peer's requests are refused (403) and its follows rejected."""
    peer = peer_get_or_create(url=url)
    peer_update(peer=peer, changes={"state": PeerState.BLOCKED if blocked else PeerState.ALLOWED})
    if blocked:
        Follower.objects.filter(peer=peer).update(state=FollowState.REJECTED)
    return peer


def actor_keys_rotate(*, user: User | None, kinds: tuple[str, ...] = tuple(KeyKind.values)) -> ActorKey:
    """Rotate an actor's keys (`kinds`: rsa, ed25519; both by default) and tell its followers (an `Update` of the
    actor), so they fetch the new keys before the next signature check rather than after a failed one."""
    with transaction.atomic():
        for kind in kinds:
            actor_key_rotate(user, kind)
        _actor_update_publish(user)
    log.info("rotated the %s keys of %s", "+".join(kinds), actors.actor_url(user))
    return actor_key(user)


def actor_key_revoke(*, key_id: str) -> RetiredActorKey:
    """Revoke a retired key of a local actor, named by its id (`<actor URL>#<name>`): listed as revoked from now on,
    and followers told (an `Update` of the actor), so they refuse what it signed. The current key is rotated first."""
    actor_url, _, name = key_id.partition("#")
    ours, user = actors.actor_from_url(actor_url)
    with transaction.atomic():
        retired = retired_keys(user).select_for_update().filter(name=name).first() if ours and name else None
        if retired is None:
            raise ServiceError(f"{key_id}: not a retired key of a local actor (a current key is rotated first, then "
                               "revoked; manage.py federation keys lists them)", code="not_found", status=404)
        if retired.revoked_at is None:
            retired.revoked_at = timezone.now()
            retired.save(update_fields=["revoked_at"])
            _actor_update_publish(user)
    log.info("revoked %s", key_id)
    return retired


def _actor_update_publish(user: User | None) -> None:
    actor = actors.actor_document(user)
    activity_publish(actor=actors.HUB_ACTOR_NAME if user is None else user.username,
                     activity={"type": "Update", "object": {k: v for k, v in actor.items() if k != "@context"}})
