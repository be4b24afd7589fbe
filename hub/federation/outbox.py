"""Outboxes (an OrderedCollection paged newest first, as Mastodon does, with `min_id` / `max_id` cursors) and
catch-up: paging a followed actor's outbox from where we left off, feeding each activity to the inbox path."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.db.models import QuerySet
from django.utils import timezone

from hub.accounts.models import User
from hub.federation import actors
from hub.federation.client import RemoteError, fetch_json
from hub.federation.inbox import activity_store
from hub.federation.models import Follow, FollowState, OutboxActivity, RemoteActor

log = logging.getLogger("hub.federation")
PAGE_SIZE = 20
CATCH_UP_PAGES = 10  # per follow and run; the next run goes on from the cursor
PRIVATE_TYPES = {"Follow", "Accept", "Reject", "Undo"}


def _listed(user: User | None) -> QuerySet[OutboxActivity]:
    """A namespace's public activities; the hub actor's outbox lists every public activity of the hub (following
    the whole hub means hearing of every namespace on it, so catching up on it must see them all)."""
    public = OutboxActivity.objects.filter(public=True)
    return public if user is None else public.filter(user=user)


def outbox_document(user: User | None, *, page: bool, min_id: int | None, max_id: int | None) -> dict:
    """The collection (no `page`) or one page: newest first; `max_id` pages to older items, `min_id` to the
    items just newer than it (what catch-up walks, through `prev`)."""
    url = actors.collection_url(user, "outbox")
    listed = _listed(user)
    if not page:
        return {"@context": actors.CONTEXT, "id": url, "type": "OrderedCollection", "totalItems": listed.count(),
                "first": f"{url}?page=true", "last": f"{url}?page=true&min_id=0"}
    if min_id is not None:
        items = list(listed.filter(pk__gt=min_id).order_by("pk")[:PAGE_SIZE])[::-1]
    else:
        items = list((listed.filter(pk__lt=max_id) if max_id is not None else listed).order_by("-pk")[:PAGE_SIZE])
    query = f"page=true&min_id={min_id}" if min_id is not None else f"page=true&max_id={max_id}" if max_id else "page=true"
    document = {"@context": actors.CONTEXT, "id": f"{url}?{query}", "type": "OrderedCollectionPage", "partOf": url,
                "orderedItems": [item.data for item in items],
                "prev": f"{url}?page=true&min_id={items[0].pk if items else min_id or 0}"}
    if items and listed.filter(pk__lt=items[-1].pk).exists():
        document["next"] = f"{url}?page=true&max_id={items[-1].pk}"
    return document


def _host(url: object) -> str | None:
    """host[:port] of a URL from a remote document; None for anything else (matches no host)."""
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url).netloc or None
    except ValueError:
        return None


def catch_up(*, follow: Follow) -> int:
    """Fetch what the followed actor published since the cursor (oldest first) and store each activity as if
    delivered; the cursor moves page by page. The number of activities seen."""
    if follow.state != FollowState.ACCEPTED:
        return 0
    actor = RemoteActor.objects.filter(url=follow.actor_url).first()
    if actor is None or not actor.outbox_url:
        return 0
    seen = 0
    try:
        url = follow.outbox_cursor or str(fetch_json(actor.outbox_url).get("last") or "")
        for _ in range(CATCH_UP_PAGES):
            if not url or _host(url) != _host(actor.outbox_url):
                break
            page = fetch_json(url)
            items = [item for item in page.get("orderedItems", []) if isinstance(item, dict)]
            for item in reversed(items):  # newest first on the page: oldest first here
                if (item.get("type") in PRIVATE_TYPES or not isinstance(item.get("id"), str) or len(item["id"]) > 600
                        or not isinstance(item.get("type"), str) or len(item["type"]) > 50):
                    continue
                if _host(item.get("actor")) != _host(actor.url):
                    continue  # an outbox speaks only for its own server's actors
                activity_store(peer=follow.peer, activity=item)
                seen += 1
            newer = str(page.get("prev") or "")
            if not items or not newer or newer == url:
                break  # the cursor stays on this page: the next run reads it again (seen items are kept once)
            url = newer
        follow.outbox_cursor, follow.last_error = url, ""
    except RemoteError as exc:
        follow.last_error = str(exc)[:2000]
        log.warning("catch-up of %s failed: %s", follow.actor_url, exc)
    follow.caught_up_at = timezone.now()
    follow.save(update_fields=["outbox_cursor", "last_error", "caught_up_at"])
    return seen
