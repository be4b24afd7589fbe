"""Inboxes: a signed POST is checked (size, signature, Date, Digest, blocked peer), deduplicated by activity id,
stored, and processed on the `federation` queue. Follow/Accept/Reject/Undo are handled here; every other activity
goes to `hub.federation.mirroring.activity_received`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ParseError

from hub.accounts.models import User
from hub.api.parsers import check_parsed
from hub.federation import actors, services
from hub.federation.delivery import QUEUE
from hub.federation.httpsig import SignatureRefused, request_verify
from hub.federation.models import InboxActivity, InboxState, Peer, PeerState

log = logging.getLogger("hub.federation")


@dataclass(frozen=True)
class Refusal(Exception):
    status: int
    error: str
    detail: str


def inbox_receive(*, method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    """Check and store one POSTed activity (any inbox: what it is for is in the activity); its id.
    Raises Refusal (status, error code, detail) for anything refused, after logging it."""
    try:
        return _receive(method=method, url=url, headers=headers, body=body)
    except SignatureRefused as exc:
        refusal = Refusal(exc.status, exc.error, exc.detail)
    except Refusal as exc:
        refusal = exc
    log.warning("inbox refused %s %s: %s %s (%s)", method, url, refusal.status, refusal.error, refusal.detail)
    raise refusal


def _receive(*, method: str, url: str, headers: dict[str, str], body: bytes) -> str:
    limit = settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES
    if len(body) > limit:
        raise Refusal(413, "too_large", f"the activity is over {limit} bytes (NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES)")
    signed = request_verify(method=method, url=url, headers=headers, body=body, public_key=services.public_key_for)
    actor = services.remote_actor_get(url=signed.key_id)
    if actor.peer.state == PeerState.BLOCKED:
        raise Refusal(403, "blocked", f"{actor.peer.base_url} is blocked by this hub")
    try:
        activity = json.loads(body)
        check_parsed(activity)
    except (ValueError, RecursionError):
        raise Refusal(400, "bad_json", "the body is not JSON") from None
    except ParseError as exc:
        raise Refusal(400, "bad_json", str(exc.detail)) from None
    if not isinstance(activity, dict):
        raise Refusal(400, "bad_activity", "the body: expected a JSON object (an activity)")
    missing = [name for name in ("id", "type", "actor") if not isinstance(activity.get(name), str)]
    if missing:
        raise Refusal(400, "bad_activity", f"the activity lacks {', '.join(missing)} (strings)")
    if len(activity["id"]) > 600 or len(activity["type"]) > 50:
        raise Refusal(400, "bad_activity", "the activity's id is over 600 characters or its type over 50")
    if activity["actor"] != actor.url:
        raise Refusal(401, "actor_mismatch", f"actor {activity['actor']} is not the signer {actor.url}")
    return activity_store(peer=actor.peer, activity=activity)


def activity_store(*, peer: Peer, activity: dict) -> str:
    """Keep an activity once per id and enqueue its processing; a duplicate is kept no second time."""
    try:
        with transaction.atomic():
            stored = InboxActivity.objects.create(activity_id=activity["id"], peer=peer, actor_url=activity["actor"],
                                                  type=activity["type"], data=activity)
    except IntegrityError:
        log.info("duplicate activity %s ignored", activity["id"])
        return activity["id"]
    transaction.on_commit(lambda: current_app.send_task("federation.process_inbox", args=[stored.pk], queue=QUEUE))
    return activity["id"]


def _local_target(activity: dict) -> tuple[bool, User | None]:
    inner = activity.get("object")
    return actors.actor_from_url(inner if isinstance(inner, str) else "")


def activity_process(*, inbox_activity_id: int) -> str:
    """Act on a stored activity, once: Follow/Accept/Reject/Undo here, the rest in mirroring."""
    with transaction.atomic():
        stored = (InboxActivity.objects.select_for_update(of=("self",)).select_related("peer")
                  .filter(pk=inbox_activity_id, state=InboxState.RECEIVED).first())
        if stored is None:
            return "nothing to do"
        activity, peer = stored.data, stored.peer
        try:
            with transaction.atomic():  # a savepoint: a failure leaves the row's own update possible
                outcome = _dispatch(peer=peer, activity=activity)
            stored.state = InboxState.PROCESSED
        except Exception as exc:  # noqa: BLE001 - recorded on the row: a bad activity must not be retried forever
            log.exception("processing %s failed", stored.activity_id)
            stored.state, stored.error, outcome = InboxState.FAILED, str(exc)[:2000], "failed"
        stored.processed_at = timezone.now()
        stored.save(update_fields=["state", "error", "processed_at"])
    return outcome


def _dispatch(*, peer: Peer, activity: dict) -> str:
    kind = activity["type"]
    if kind == "Follow":
        ours, user = _local_target(activity)
        if not ours:
            return "follow of no local actor"
        services.follower_add(peer=peer, activity=activity, user=user)
        return "follower"
    if kind in ("Accept", "Reject"):
        services.follow_answered(peer=peer, activity=activity, accepted=kind == "Accept")
        return kind.lower()
    inner = activity.get("object")
    if kind == "Undo" and isinstance(inner, dict) and inner.get("type") == "Follow":
        services.follower_remove(activity=activity)
        return "unfollowed"
    if kind == "Update" and isinstance(inner, dict) and inner.get("id") == activity["actor"]:
        # The actor changed (new or revoked keys): its document is fetched again from its own URL, not taken
        # from the activity, and the cached keys replaced.
        services.remote_actor_get(url=activity["actor"], refresh=True)
        return "actor refreshed"
    from hub.federation import mirroring  # F2's module: everything about content

    mirroring.activity_received(peer=peer, activity=activity)
    return "handed to mirroring"
