"""Federation's Celery tasks (queue `federation`): deliveries, inbox processing, catch-up. Thin and idempotent
(`acks_late`): a duplicate message finds its row already done."""

from __future__ import annotations

from celery import shared_task

from hub.federation.delivery import QUEUE, delivery_attempt
from hub.federation.inbox import activity_process
from hub.federation.mirroring import remote_items_list_missing
from hub.federation.models import Follow, FollowState, PeerState
from hub.federation.outbox import catch_up


@shared_task(name="federation.deliver", queue=QUEUE, acks_late=True)
def deliver(delivery_id: int) -> str:
    return delivery_attempt(delivery_id=delivery_id)


@shared_task(name="federation.process_inbox", queue=QUEUE, acks_late=True)
def process_inbox(inbox_activity_id: int) -> str:
    return activity_process(inbox_activity_id=inbox_activity_id)


@shared_task(name="federation.catch_up_follow", queue=QUEUE, acks_late=True)
def catch_up_follow(follow_id: int) -> int:
    follow = Follow.objects.select_related("peer").filter(pk=follow_id).first()
    return catch_up(follow=follow) if follow else 0


@shared_task(name="federation.catch_up", queue=QUEUE, acks_late=True)
def catch_up_all() -> int:
    """The beat's: every accepted follow, from its cursor; then the catalog's side of listed items that lack one."""
    seen = sum(catch_up(follow=follow) for follow in
               Follow.objects.select_related("peer").filter(state=FollowState.ACCEPTED, peer__state=PeerState.ALLOWED))
    remote_items_list_missing()
    return seen
