"""Publishing activities: stored in the actor's outbox, signed (an embedded proof), and delivered on the
`federation` queue to every follower inbox, once per (activity, inbox), with retries and exponential backoff."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from hub.accounts.models import User
from hub.federation import actors
from hub.federation.client import RemoteError, signed_post
from hub.federation.keys import actor_key
from hub.federation.models import Delivery, DeliveryState, Follower, FollowState, OutboxActivity, Peer, PeerState
from hub.federation.remote import base_url_of
from hub.federation.signatures import embedded_signature_sign

log = logging.getLogger("hub.federation")
QUEUE = "federation"
RETRIED_STATUSES = {401, 408, 425, 429}  # worth another try (401: the peer may not have our rotated key yet)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def follower_inboxes(user: User | None) -> list[str]:
    """Where an activity of `user` (None: the hub) goes: accepted followers of that actor and of the hub, one
    inbox per server (its shared inbox when it has one)."""
    followers = Follower.objects.filter(Q(user=None) | Q(user=user) if user else Q(user=None),
                                        state=FollowState.ACCEPTED, peer__state=PeerState.ALLOWED)
    return sorted({f.shared_inbox_url or f.inbox_url for f in followers if f.shared_inbox_url or f.inbox_url})


def activity_publish(*, actor: str, activity: dict, inboxes: list[str] | None = None,
                     public: bool = True) -> OutboxActivity:
    """Publish an activity as `actor` ('hub' or a local username): give it an id, actor, published and (public)
    to Public / cc followers, sign it (FEP-8b32 proof), keep it in the outbox and, on commit, deliver it to the
    actor's and the hub's followers, or only to `inboxes` (a Follow, an Accept: `public` False keeps those out of
    the listed outbox)."""
    user = actors.resolve_local(actor)
    now = timezone.now()
    document = {"@context": actors.CONTEXT, **activity}
    document.setdefault("id", actors.absolute(f"/federation/activities/{uuid.uuid4()}"))
    document["actor"] = actors.actor_url(user)
    document.setdefault("published", _iso(now))
    if public:
        document.setdefault("to", [actors.AS_PUBLIC])
        document.setdefault("cc", [actors.collection_url(user, "followers")])
    signed = embedded_signature_sign(document, actor_key(user), actors.proof_key_id(user))
    targets = follower_inboxes(user) if inboxes is None else sorted({inbox for inbox in inboxes if inbox})
    with transaction.atomic():
        outbox = OutboxActivity.objects.create(activity_id=signed["id"], user=user, type=str(signed.get("type", "")),
                                               data=signed, public=public, created_at=now)
        bases = {inbox: base_url_of(inbox) for inbox in targets}
        peers = {p.base_url: p for p in Peer.objects.filter(base_url__in=set(bases.values()))}
        Delivery.objects.bulk_create(
            [Delivery(activity=outbox, inbox_url=inbox, peer=peers.get(bases[inbox])) for inbox in targets],
            ignore_conflicts=True)
        ids = list(Delivery.objects.filter(activity=outbox).values_list("pk", flat=True))

        def enqueue() -> None:
            for pk in ids:
                delivery_enqueue(delivery_id=pk)

        transaction.on_commit(enqueue)
    return outbox


def delivery_enqueue(*, delivery_id: int, countdown: float = 0) -> None:
    """Send the delivery task by name (services never import tasks)."""
    current_app.send_task("federation.deliver", args=[delivery_id], queue=QUEUE, countdown=countdown)


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff after `attempts` failures: 2, 4, 8 … seconds, at most an hour."""
    return float(min(2 ** attempts, 3600))


def delivery_attempt(*, delivery_id: int) -> str:
    """One try of one delivery: 'delivered', 'retry' (enqueued again after a backoff), 'failed' (gave up: after
    FEDERATION_DELIVERY_MAX_ATTEMPTS, or at once when the peer refuses it with a 4xx) or 'nothing to do' (already
    delivered: the task is idempotent)."""
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(of=("self",)).select_related("activity", "activity__user")
                    .filter(pk=delivery_id, state=DeliveryState.PENDING).first())
        if delivery is None:
            return "nothing to do"
        delivery.attempts = F("attempts") + 1
        delivery.save(update_fields=["attempts"])
    delivery.refresh_from_db(fields=["attempts"])
    error, final = "", False
    try:
        response = signed_post(delivery.inbox_url, delivery.activity.data, user=delivery.activity.user)
        if response.status_code >= 300:
            error = f"HTTP {response.status_code}: {response.text[:300]}"
            # The peer refused this activity (blocked, bad request): sending it again would be refused again.
            final = 400 <= response.status_code < 500 and response.status_code not in RETRIED_STATUSES
    except RemoteError as exc:
        error = str(exc)
    now = timezone.now()
    if not error:
        Delivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.DELIVERED, delivered_at=now, last_error="")
        if delivery.peer_id:
            Peer.objects.filter(pk=delivery.peer_id).update(last_delivery_at=now, failures=0, last_error="")
        return "delivered"
    log.warning("delivery of %s to %s failed (attempt %s): %s", delivery.activity.activity_id, delivery.inbox_url,
                delivery.attempts, error)
    gave_up = final or delivery.attempts >= settings.FEDERATION_DELIVERY_MAX_ATTEMPTS
    Delivery.objects.filter(pk=delivery.pk).update(last_error=error[:2000],
                                                   state=DeliveryState.FAILED if gave_up else DeliveryState.PENDING)
    if delivery.peer_id:
        Peer.objects.filter(pk=delivery.peer_id).update(failures=F("failures") + 1, last_error=error[:2000])
    if gave_up:
        return "failed"
    delivery_enqueue(delivery_id=delivery.pk, countdown=backoff_seconds(delivery.attempts))
    return "retry"
