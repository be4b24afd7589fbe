"""Reads of federation: peers, follows, counts, the NodeInfo document."""

from __future__ import annotations

from django.db.models import QuerySet

from hub.accounts.models import MIRROR_SEPARATOR, User
from hub.catalog.models import Version, VersionState
from hub.federation.models import Follow, Follower, FollowState, Peer, RemoteItem, RemoteItemState

SOFTWARE = "nomoat"


def peers_all() -> QuerySet[Peer]:
    return Peer.objects.order_by("base_url")


def follows_all() -> QuerySet[Follow]:
    return Follow.objects.select_related("peer").order_by("-created_at", "pk")


def remote_items_listed() -> QuerySet[RemoteItem]:
    """Items listed without their files (peers followed for metadata or on demand), not taken down."""
    return RemoteItem.objects.exclude(state=RemoteItemState.REMOVED).select_related("peer")


def remote_item_version(item: RemoteItem) -> Version | None:
    """The local version an item became once its files were fetched (on demand), or None."""
    return (Version.objects.filter(origin__object_id=item.object_id).select_related("repository__owner").first())


def followers_count(user: User | None) -> int:
    return Follower.objects.filter(user=user, state=FollowState.ACCEPTED).count()


def following_count() -> int:
    return Follow.objects.filter(state=FollowState.ACCEPTED).count()


def nodeinfo_document() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("nomoat")
    except PackageNotFoundError:
        release = "0"
    users = User.objects.filter(is_active=True).exclude(username__contains=MIRROR_SEPARATOR)
    return {
        "version": "2.1",
        "software": {"name": SOFTWARE, "version": release, "homepage": "https://github.com/nomoat"},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": True,
        "usage": {"users": {"total": users.count()},
                  "localPosts": Version.objects.filter(state=VersionState.PUBLISHED, origin__isnull=True).count()},
        "metadata": {"nodeName": "nomoat hub"},
    }
