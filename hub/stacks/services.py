"""Writes for stacks: resolve a client's recipe, share one build per recipe hash, record progress and results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from hub.accounts.models import User
from hub.catalog.download_counts import count_download, flush_downloads
from hub.catalog.models import BaseModel, Blob, RepoKind, Version, VersionState
from hub.core.errors import ServiceError
from hub.core.leases import claim_with_lease, count_attempt, lease_expired, lease_until, renew_lease
from hub.core.params import ascii_int
from hub.core.throttling import Throttled, rate_check
from hub.stacks.models import BuildState, StackAdapter, StackBuild, StackFile
from hub.stacks.signals import stack_queued, stack_ready
from workers.engine.errors import EngineInputError, quote
from workers.engine.recipe import Recipe
from workers.engine.recipe_schema import StackAdapterIn, StackRecipeIn, parse_stack_request

ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
MAX_VERSION = 999_999_999  # the recipe's refs allow nine digits


class StackRequestError(ServiceError):
    """A recipe the hub refuses, naming the field (`adapters[2].weight`) and what was expected."""

    code = "invalid_recipe"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message, details={"field": field})
        self.field = field


def _resolve_adapter(entry: StackAdapterIn, index: int, base: BaseModel) -> tuple[Version, float]:
    """The published version an entry names (its shape and weight were checked by the recipe schema)."""
    field = f"adapters[{index}]"
    ref, _, pinned = entry.adapter.partition("@")
    owner, _, name = ref.partition("/")
    number = _version_number(entry, pinned, field)
    versions = Version.objects.filter(repository__kind=RepoKind.ADAPTER, repository__owner__username=owner,
                                      repository__name=name, state=VersionState.PUBLISHED)
    if number is not None:
        versions = versions.filter(number=number)
    version = versions.select_related("base_model", "repository__owner").order_by("-number").first()
    if version is None:
        what = f"{ref}@{number}" if number is not None else ref
        raise StackRequestError(f"no published adapter {what} on this hub", field=field)
    if version.base_model_id != base.pk:
        trained_for = version.base_model.name if version.base_model else "an unknown base model"
        raise StackRequestError(f"{version} is an adapter for {trained_for}, not for {base.name}", field=field)
    return version, entry.weight


def _version_number(entry: StackAdapterIn, pinned: str, field: str) -> int | None:
    """The version an entry asks for: `"version": 3` or "owner/name@3" (the two must agree), else None (the newest).

    Only whole numbers: 1.9 is not version 1, and true is not version 1 either.
    """
    numbers = []
    if pinned:
        if ascii_int(pinned) is None:
            raise StackRequestError(f"version must be a whole number, got {quote(pinned)}", field=field)
        numbers.append(ascii_int(pinned))
    if entry.version is not None:
        value = entry.version
        if isinstance(value, str) and ascii_int(value) is not None:
            value = ascii_int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise StackRequestError(f"version must be a whole number, got {quote(value)}", field=f"{field}.version")
        numbers.append(value)
    if any(not 1 <= number <= MAX_VERSION for number in numbers):
        raise StackRequestError(f"version must be a whole number from 1 to {MAX_VERSION}", field=f"{field}.version")
    if len(set(numbers)) > 1:
        raise StackRequestError(f"{entry.adapter} pins version {numbers[0]} but \"version\" says {numbers[1]}",
                                field=f"{field}.version")
    return numbers[0] if numbers else None


def _message(exc: EngineInputError) -> str:
    """The engine's message without the field it starts with (StackRequestError names the field itself)."""
    return str(exc).split(": ", 1)[-1] if exc.field else str(exc)


def stack_recipe_resolve(*, request: Any) -> tuple[Recipe, BaseModel, list[tuple[Version, float]], StackRecipeIn]:
    """Turn a client's recipe (any shape `recipe_schema` accepts: ours, the CLI's, a mergekit config) into the
    engine's hashed recipe: the schema checks its shape, this resolves names to published versions."""
    try:
        parsed = parse_stack_request(request)
    except EngineInputError as exc:
        raise StackRequestError(_message(exc), field=exc.field) from None
    base = BaseModel.objects.filter(name=parsed.base_model).prefetch_related("files__blob").first()
    if base is None:
        raise StackRequestError(f"no base model {parsed.base_model!r} on this hub", field="base_model")
    members = [_resolve_adapter(entry, i, base) for i, entry in enumerate(parsed.adapters)]
    engine_recipe = {
        "base": {"name": base.name,
                 "sha256": {f.path: f.blob.sha256 for f in base.files.all() if f.path.endswith(".safetensors")}},
        "adapters": [
            {"ref": f"{v.repository.full_name}@{v.number}", "weight": w,
             "sha256": v.files.select_related("blob").get(path=ADAPTER_WEIGHTS_FILE).blob.sha256}
            for v, w in members
        ],
        "method": parsed.to_json()["method"],
        "output": parsed.to_json()["output"],
    }
    try:
        recipe = Recipe.from_dict(engine_recipe)
    except EngineInputError as exc:
        raise StackRequestError(_message(exc), field=exc.field) from None
    return recipe, base, members, parsed


ACTIVE_BUILD_STATES = (BuildState.QUEUED, BuildState.RUNNING, BuildState.VERIFYING)


def stack_build_quota_check(*, user: User | None) -> None:
    """A build that is not shared with an earlier identical request counts against its requester's limits: at most
    STACK_BUILDS_CONCURRENT_PER_USER queued or running at once, and the `stack_builds_per_user` rate."""
    if not (user and user.is_authenticated):
        return
    limit = settings.STACK_BUILDS_CONCURRENT_PER_USER
    active = StackBuild.objects.filter(requested_by=user, state__in=ACTIVE_BUILD_STATES).count()
    if active >= limit:
        raise Throttled(f"you have {active} stack builds queued or running, the most one user may have at once "
                        f"({limit}); ask again when one has finished", retry_after=60)
    rate_check("stack_builds_per_user", f"user:{user.pk}", what="new stack builds")


def stack_request(*, user: User | None, request: Mapping[str, Any]) -> tuple[StackBuild, bool]:
    """The build for this recipe: an existing one (shared), or a new one enqueued. Returns (build, created)."""
    recipe, base, members, parsed = stack_recipe_resolve(request=request)
    if not StackBuild.objects.filter(recipe_hash=recipe.hash).exclude(state=BuildState.FAILED).exists():
        stack_build_quota_check(user=user)
    try:
        with transaction.atomic():
            build = StackBuild.objects.create(
                recipe_hash=recipe.hash, recipe=recipe.to_dict(), request=parsed.to_json(), base_model=base,
                method=recipe.method.name, output=recipe.output.type,
                requested_by=user if user and user.is_authenticated else None,
            )
            StackAdapter.objects.bulk_create([StackAdapter(build=build, version=v, position=i, weight=w)
                                              for i, (v, w) in enumerate(members)])
            stack_queued.send(sender=StackBuild, build_id=build.pk)
            return build, True
    except IntegrityError:
        pass  # an identical recipe was requested before (or at the same moment): share its build
    StackBuild.objects.filter(recipe_hash=recipe.hash).update(request_count=F("request_count") + 1)
    build = StackBuild.objects.get(recipe_hash=recipe.hash)
    if build.state == BuildState.FAILED:
        stack_retry(build=build)
        build.refresh_from_db()
    return build, False


def stack_retry(*, build: StackBuild) -> None:
    """A failed build asked for again is built again."""
    if StackBuild.objects.filter(pk=build.pk, state=BuildState.FAILED).update(
        state=BuildState.QUEUED, failure_reason="", progress=0.0, progress_message="", lease_expires_at=None
    ):
        stack_queued.send(sender=StackBuild, build_id=build.pk)


def stack_claim(*, build_id: int, lease_seconds: int) -> StackBuild | None:
    claimable = Q(state=BuildState.QUEUED) | (Q(state__in=[BuildState.RUNNING, BuildState.VERIFYING]) & lease_expired())
    if not claim_with_lease(StackBuild, build_id, claimable, lease_seconds=lease_seconds, state=BuildState.RUNNING,
                            started_at=timezone.now(), attempts=count_attempt(), progress=0.0):
        return None
    return StackBuild.objects.select_related("base_model").get(pk=build_id)


def stack_renew_lease(*, build: StackBuild, lease_seconds: int) -> bool:
    """The building worker's heartbeat, for as long as its claim holds (a re-claimed build is its new worker's)."""
    held = Q(state__in=[BuildState.RUNNING, BuildState.VERIFYING], attempts=build.attempts)
    return renew_lease(StackBuild, build.pk, held, lease_seconds=lease_seconds)


def stack_progress(*, build: StackBuild, fraction: float, message: str, lease_seconds: int,
                   state: str = BuildState.RUNNING) -> None:
    """Record progress and extend the lease: a build that reports progress is alive."""
    StackBuild.objects.filter(pk=build.pk, state__in=[BuildState.RUNNING, BuildState.VERIFYING]).update(
        state=state, progress=round(min(max(fraction, 0.0), 1.0), 4), progress_message=message[:200],
        lease_expires_at=lease_until(lease_seconds),
    )


@transaction.atomic
def stack_record_ready(*, build: StackBuild, manifest: dict, files: Mapping[str, Blob]) -> StackBuild:
    StackFile.objects.filter(build=build).delete()
    StackFile.objects.bulk_create([StackFile(build=build, path=p, blob=b) for p, b in sorted(files.items())])
    StackBuild.objects.filter(pk=build.pk).update(
        state=BuildState.READY, manifest=manifest, progress=1.0, progress_message="ready",
        finished_at=timezone.now(), lease_expires_at=None, failure_reason="",
    )
    build.refresh_from_db()
    transaction.on_commit(lambda: stack_ready.send(sender=StackBuild, build=build))
    return build


def stack_record_failure(*, build: StackBuild, reason: str, details: dict | None = None) -> None:
    """`details` (e.g. a verification gate's figures) is kept in the manifest field for people to inspect."""
    StackBuild.objects.filter(pk=build.pk).update(state=BuildState.FAILED, failure_reason=reason[:2000],
                                                  manifest={"failure": details} if details else {},
                                                  finished_at=timezone.now(), lease_expires_at=None)


def stacks_requeue_stale() -> list[int]:
    """Builds whose worker died (lease ran out) are built again."""
    ids = list(StackBuild.objects.filter(Q(state__in=[BuildState.RUNNING, BuildState.VERIFYING]) & lease_expired())
               .values_list("pk", flat=True))
    for build_id in ids:
        stack_queued.send(sender=StackBuild, build_id=build_id)
    return ids


def stack_record_download(*, build: StackBuild) -> None:
    """Buffered (hub/catalog/download_counts.py): the row shows it after the next flush."""
    count_download("stack", build.pk, apply=stacks_add_downloads)


def stacks_add_downloads(*, counts: Mapping[int, int]) -> None:
    """Add {build id: downloads} to the builds."""
    for build_id, added in counts.items():
        StackBuild.objects.filter(pk=build_id).update(downloads=F("downloads") + added)


def stacks_flush_downloads() -> int:
    """Fold the buffered downloads of stacks into their rows (the beat's task); how many were folded."""
    return flush_downloads("stack", apply=stacks_add_downloads)
