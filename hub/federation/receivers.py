"""Federation listens to the catalog and moderation and tells the network what changed here.

- a local version is published -> its namespace actor publishes a Create;
- a mirrored version becomes servable -> the hub actor Announces the origin's signed Create (so this hub's
  followers get it with the origin's signature still verifiable; a listed one is announced when it is listed,
  hub.federation.mirroring._record_listed);
- a moderator takes a local version down -> its namespace actor publishes a Delete with the reason;
- a local user reports a mirrored version -> the hub actor sends a Flag to its origin.

`version_published` is sent after its transaction commits; the post_save receivers publish on commit, so
nothing is announced for a change that rolls back.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save

from hub.accounts.models import MIRROR_SEPARATOR
from hub.catalog.models import FetchState, RepoKind, Version, VersionOrigin
from hub.catalog.signals import version_published
from hub.federation.delivery import activity_publish
from hub.federation.mirroring import (  # also registers the mirror_version task with Celery
    announce_to_followers,
    origin_takedown_enforce,
)
from hub.federation.models import Peer
from hub.federation.objects import create_activity, delete_activity, flag_activity
from hub.federation.services import base_url_of
from hub.moderation.models import Report, Takedown, TakedownKind

log = logging.getLogger(__name__)


def _local_version(version_id: int) -> Version | None:
    """The version, when it is this hub's own (not mirrored) and its owner is a local actor."""
    version = Version.objects.select_related("repository__owner").filter(pk=version_id).first()
    if version is None or VersionOrigin.objects.filter(version=version).exists():
        return None
    return version


def on_version_published(sender: type, version: Version, **kwargs: object) -> None:
    origin = VersionOrigin.objects.filter(version=version).first()
    if origin is not None:
        if origin.fetch_state == FetchState.TAKEN_DOWN:
            origin_takedown_enforce(origin=origin)  # published after its origin's takedown arrived
        elif origin.activity:
            announce_to_followers(origin.activity, origin=origin, version=version)
        return
    local = _local_version(version.pk)
    if local is not None and local.repository.owner.is_active:
        activity_publish(actor=local.repository.owner.username, activity=create_activity(local))


def on_takedown_saved(sender: type, instance: Takedown, **kwargs: object) -> None:
    """A moderator's takedown of a local version goes out as a Delete (a hold by reports waits for a moderator)."""
    if instance.kind != TakedownKind.UNPUBLISHED or instance.lifted_at is not None:
        return
    if instance.target_kind not in RepoKind.values:
        return
    transaction.on_commit(lambda: _publish_delete(instance.target_id, instance.reason))


def _publish_delete(version_id: int, reason: str) -> None:
    version = _local_version(version_id)
    if version is not None and version.repository.owner.is_active:
        activity_publish(actor=version.repository.owner.username, activity=delete_activity(version, reason))


def on_report_saved(sender: type, instance: Report, created: bool, **kwargs: object) -> None:
    """A local user's report on a mirrored version also reaches its origin's moderators, as a Flag."""
    if not created or instance.target_kind not in RepoKind.values or MIRROR_SEPARATOR in instance.reporter.username:
        return  # reports filed for a peer hub (mirroring.peer_user) came from the network: not sent back
    origin = VersionOrigin.objects.filter(version_id=instance.target_id).first()
    if origin is None:
        return
    transaction.on_commit(lambda: _send_flag(origin.object_id, instance.reason, instance.comment))


def _send_flag(object_id: str, reason: str, comment: str) -> None:
    peer = Peer.objects.filter(base_url=base_url_of(object_id)).first()
    inbox = peer and (peer.shared_inbox_url or peer.inbox_url)
    if not inbox:
        log.warning("report on %s not sent: its origin hub's inbox is not known", object_id)
        return
    flag = flag_activity(object_id=object_id, reason=reason, comment=comment)
    activity_publish(actor="hub", activity={**flag, "to": [peer.actor_url]}, inboxes=[inbox], public=False)


def connect() -> None:
    """Called from the app's ready()."""
    version_published.connect(on_version_published, dispatch_uid="federation.version_published")
    post_save.connect(on_takedown_saved, sender=Takedown, dispatch_uid="federation.takedown_saved")
    post_save.connect(on_report_saved, sender=Report, dispatch_uid="federation.report_saved")
