"""Reads for stacks. A stack is public while every adapter in it is published."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404

from hub.catalog.models import VersionState
from hub.catalog.selectors import files_with_blobs
from hub.stacks.models import BuildState, StackAdapter, StackBuild, StackFile


def stacks_listed(*, base_model: str = "", adapter: str = "", ordering: str = "popular") -> QuerySet[StackBuild]:
    """Ready stacks whose adapters are all still published (a takedown hides the stacks built on it)."""
    withdrawn = StackAdapter.objects.filter(build=OuterRef("pk")).exclude(version__state=VersionState.PUBLISHED)
    qs = (StackBuild.objects.filter(state=BuildState.READY).exclude(Exists(withdrawn))
          .select_related("base_model")
          .prefetch_related("members__version__repository__owner", files_with_blobs("files", StackFile)))
    if base_model:
        qs = qs.filter(base_model__name=base_model)
    if adapter:
        owner, _, name = adapter.partition("/")
        qs = qs.filter(members__version__repository__owner__username=owner,
                       members__version__repository__name=name).distinct()
    order = {"popular": ("-downloads", "-request_count", "-pk"), "newest": ("-created_at", "-pk")}
    return qs.order_by(*order.get(ordering, order["popular"]))


def stack_get(recipe_hash: str) -> StackBuild:
    build = (StackBuild.objects.select_related("base_model")
             .prefetch_related("members__version__repository__owner", files_with_blobs("files", StackFile))
             .filter(recipe_hash=recipe_hash).first())
    if build is None:
        raise Http404(f"no stack {recipe_hash}")
    return build


class StackWithdrawn(Http404):
    """A stack built on an item that is no longer published, asked for by someone who is not a moderator."""


def stack_get_visible(user, recipe_hash: str) -> StackBuild:
    """A stack as `user` may see it. A withdrawn one is the moderators' to inspect; anyone else hears only why it is
    gone (its manifest, files and recipe name what was taken down)."""
    build = stack_get(recipe_hash)
    reason = stack_withdrawn_reason(build)
    if reason and not (user and user.is_authenticated and user.is_moderator):
        raise StackWithdrawn(stack_not_served_message(build, reason))
    return build


def stack_not_served_message(build: StackBuild, reason: str) -> str:
    return f"stack {build.recipe_hash[:12]} is no longer served: {reason}"


def stack_withdrawn_reason(build: StackBuild) -> str:
    """Why a stack is not served, when one of its adapters is no longer published ("" when it is fine)."""
    for member in build.members.all():
        if member.version.state != VersionState.PUBLISHED:
            why = f": {member.version.state_reason}" if member.version.state_reason else ""
            return f"adapter {member.version} is {member.version.get_state_display().lower()}{why}"
    return ""
