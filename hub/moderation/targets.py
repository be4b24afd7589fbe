"""What can be reported and taken down, by kind.

A report or takedown stores (kind, id); the kind's `TargetType` turns that into something to show
and act on. Adapters and datasets name one version. Stacks join by registering a TargetType under
"stack" in TARGET_TYPES: no migration, no change to reports, takedowns or the audit log.

Lookups made for a person pass `visible_to`: an item they may not see is then not found, exactly as a
missing one (the same error and message), so the answer never tells that it exists. Without it (the
hub's own bookkeeping) every item is found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q
from django.urls import reverse

from hub.accounts.models import User
from hub.catalog.models import RepoKind, Version, VersionState
from hub.catalog.selectors import versions_visible_to
from hub.catalog.services import version_set_state
from hub.core.errors import ServiceError

Viewer = User | AnonymousUser | None  # None: no restriction


class TargetNotFound(ServiceError):
    """No such item, or one the caller cannot see (the two answer alike)."""

    code = "not_found"
    status = 404


@dataclass(frozen=True)
class Target:
    kind: str
    id: int
    label: str
    url: str
    owner: User | None
    is_published: bool
    is_withdrawn: bool  # was public, and is not any more (hidden or unpublished)


class TargetType(Protocol):
    def get(self, target_id: int, *, visible_to: Viewer = None) -> Target: ...
    def find(self, name: str, number: int | None, *, visible_to: Viewer = None) -> Target: ...
    def withdraw(self, target: Target, reason: str) -> None: ...
    def restore(self, target: Target, reason: str) -> None: ...
    def published_by(self, owner: User) -> list[Target]: ...


class VersionTargets:
    """Adapters and datasets: a target is one version of a repository of that kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _target(self, version: Version) -> Target:
        repo = version.repository
        return Target(
            kind=self.kind,
            id=version.pk,
            label=f"{repo.full_name} v{version.number}",
            url=reverse(f"{self.kind}-version-page", args=[repo.owner.username, repo.name, version.number]),
            owner=version.created_by,
            is_published=version.state == VersionState.PUBLISHED,
            is_withdrawn=version.state == VersionState.UNPUBLISHED,
        )

    def _versions(self, visible_to: Viewer = None):
        versions = Version.objects.all() if visible_to is None else versions_visible_to(visible_to)
        return versions.filter(repository__kind=self.kind).select_related("repository__owner", "created_by")

    def get(self, target_id: int, *, visible_to: Viewer = None) -> Target:
        version = self._versions(visible_to).filter(pk=target_id).first()
        if version is None:
            raise TargetNotFound(f"no {self.kind} version with id {target_id}")
        return self._target(version)

    def find(self, name: str, number: int | None, *, visible_to: Viewer = None) -> Target:
        """`owner/name`, at version `number` or else its latest published version."""
        owner, _, repo_name = name.partition("/")
        versions = self._versions(visible_to).filter(repository__owner__username=owner, repository__name=repo_name)
        wanted = Q(state=VersionState.PUBLISHED) if number is None else Q(number=number)
        version = versions.filter(wanted).order_by("-number").first()
        if version is None:
            raise TargetNotFound(f"{self.kind} {name}{f' v{number}' if number else ''} not found")
        return self._target(version)

    def withdraw(self, target: Target, reason: str) -> None:
        version_set_state(version=Version.objects.get(pk=target.id), state=VersionState.UNPUBLISHED, reason=reason)

    def restore(self, target: Target, reason: str) -> None:
        version_set_state(version=Version.objects.get(pk=target.id), state=VersionState.PUBLISHED, reason=reason)

    def published_by(self, owner: User) -> list[Target]:
        return [self._target(v) for v in self._versions().filter(created_by=owner, state=VersionState.PUBLISHED)]


TARGET_TYPES: dict[str, TargetType] = {kind: VersionTargets(kind) for kind in RepoKind.values}


def target_type(kind: str) -> TargetType:
    try:
        return TARGET_TYPES[kind]
    except KeyError:
        raise TargetNotFound(f"unknown target kind {kind!r}; expected one of {', '.join(TARGET_TYPES)}") from None


def target_get(kind: str, target_id: int, *, visible_to: Viewer = None) -> Target:
    return target_type(kind).get(target_id, visible_to=visible_to)


def target_of_version(version: Version) -> Target:
    return target_get(version.repository.kind, version.pk)
