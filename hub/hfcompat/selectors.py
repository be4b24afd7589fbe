"""Reads behind the Hub-compatible routes: which files of which revision a request means.

A *resolver* turns (user, repo type, namespace, name, revision) into a `Revision`, or None when the repository is
not one of its own. The catalog's resolver answers adapters as model repos and datasets as dataset repos, their
versions being the revisions. Another read-only source (a built stack as the model repo `stacks/<hash>`) plugs in
with `register_resolver` and gets the info, tree and resolve routes with nothing else to write.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, OuterRef, Prefetch, QuerySet, prefetch_related_objects
from django.http import HttpRequest, HttpResponse

from hub.accounts.models import User
from hub.catalog.downloads import serve_listed_file, serve_version_file
from hub.catalog.models import RepoKind, Repository, Version
from hub.catalog.selectors import (
    RepositoryFilters,
    origin_of,
    repositories_visible,
    versions_visible_to,
    withdrawal_of,
)
from hub.hfcompat.errors import ENTRY_NOT_FOUND, REPO_NOT_FOUND, REVISION_NOT_FOUND, HubError

MAIN = "main"


@dataclass(frozen=True)
class HubFile:
    """A file as the Hub describes it. Every nomoat file is presented as an LFS object: blobs are addressed by
    sha256 like LFS objects, so the sha256 is the ETag and the git blob id is that of the LFS pointer."""

    type: ClassVar[str] = "file"
    path: str
    sha256: str
    size: int

    @property
    def lfs_pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def pointer_size(self) -> int:
        return len(self.lfs_pointer)

    @property
    def blob_id(self) -> str:
        pointer = self.lfs_pointer
        return hashlib.sha1(b"blob %d\0" % len(pointer) + pointer, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class HubFolder:
    type: ClassVar[str] = "directory"
    path: str
    oid: str  # stands in for a git tree id: a digest of the paths and contents below the folder


@dataclass(frozen=True)
class Revision:
    """One revision of a read-only repository: what info, tree and resolve answer from."""

    repo_type: str  # "model" | "dataset"
    repo_id: str
    sha: str  # 40 hex characters, stable for the revision's content
    files: tuple[HubFile, ...]
    serve: Callable[[HttpRequest, HubFile], HttpResponse]  # answers GET/HEAD for one of `files`
    author: str
    created_at: datetime
    last_modified: datetime
    private: bool = False
    downloads: int = 0
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    card_data: dict | None = None
    ref: str = ""  # the tag naming this revision (`v3`), or "" when only `main` and the commit id name it
    title: str = ""  # the commit title `list_repo_commits` shows
    # This revision and those before it that the caller may see, newest first (None: it has no history).
    older: Callable[[], Sequence[Revision]] | None = None

    @property
    def history(self) -> Sequence[Revision]:
        return self.older() if self.older is not None else (self,)

    def file(self, path: str) -> HubFile:
        found = next((f for f in self.files if f.path == path), None)
        if found is None:
            # The client caches the absence per commit, so the refusal names the commit.
            raise HubError(ENTRY_NOT_FOUND, f"{path!r} is not a file of {self.repo_id} at {self.sha}",
                           headers={"X-Repo-Commit": self.sha})
        return found


class Resolver(Protocol):
    def __call__(self, *, user: User | AnonymousUser, repo_type: str, namespace: str, name: str,
                 revision: str) -> Revision | None: ...


_resolvers: list[Resolver] = []


def register_resolver(resolver: Resolver) -> Resolver:
    """Add a source of read-only repositories (usable as a decorator); the latest registered is asked first."""
    _resolvers.insert(0, resolver)
    return resolver


def revision_resolve(*, user: User | AnonymousUser, repo_type: str, namespace: str, name: str,
                     revision: str) -> Revision:
    for resolver in _resolvers:
        found = resolver(user=user, repo_type=repo_type, namespace=namespace, name=name, revision=revision)
        if found is not None:
            return found
    raise HubError(REPO_NOT_FOUND, f"{repo_type} repository {namespace}/{name} not found")


def tree_entries(revision: Revision, *, path: str, recursive: bool) -> list[HubFile | HubFolder]:
    """The Hub's tree listing of a folder: its files and folders, and with `recursive` everything below them."""
    prefix = f"{path}/" if path else ""
    below = [f for f in revision.files if f.path.startswith(prefix)]
    if path and not below:
        raise HubError(ENTRY_NOT_FOUND, f"{path!r} is not a folder of {revision.repo_id} at {revision.sha}",
                       headers={"X-Repo-Commit": revision.sha})
    entries: dict[str, HubFile | HubFolder] = {}
    for file in below:
        parts = file.path[len(prefix):].split("/")
        depth = len(parts) - 1 if recursive else min(len(parts) - 1, 1)
        for level in range(1, depth + 1):
            folder = prefix + "/".join(parts[:level])
            entries.setdefault(folder, _folder(revision, folder))
        if recursive or len(parts) == 1:
            entries[file.path] = file
    return [entries[p] for p in sorted(entries)]


def last_commits(revision: Revision) -> dict[str, Revision]:
    """For each file of `revision`, the oldest revision since which it has had its current content (git's "last
    commit" of a file, along the linear history of versions)."""
    last = {f.path: revision for f in revision.files}
    unchanged = {f.path: f.sha256 for f in revision.files}
    for older in revision.history[1:]:
        held = {f.path: f.sha256 for f in older.files}
        unchanged = {p: s for p, s in unchanged.items() if held.get(p) == s}
        if not unchanged:
            break
        last.update(dict.fromkeys(unchanged, older))
    return last


def paths_info(revision: Revision, paths: Sequence[str]) -> list[HubFile | HubFolder]:
    """The entries for `paths` that exist in `revision` (files, or folders holding files); the rest are skipped, as
    the Hub skips them."""
    files = {f.path: f for f in revision.files}
    found: list[HubFile | HubFolder] = []
    for path in dict.fromkeys(p.strip("/") for p in paths):
        if path in files:
            found.append(files[path])
        elif path and any(p.startswith(f"{path}/") for p in files):
            found.append(_folder(revision, path))
    return found


def _folder(revision: Revision, path: str) -> HubFolder:
    digest = hashlib.sha1(usedforsecurity=False)
    for file in revision.files:
        if file.path.startswith(f"{path}/"):
            digest.update(f"{file.path} {file.sha256}\n".encode())
    return HubFolder(path=path, oid=digest.hexdigest())


# --- the catalog: adapters and datasets ------------------------------------------------------------------------------

KIND_OF = {"model": RepoKind.ADAPTER, "dataset": RepoKind.DATASET}
REPO_TYPE_OF = {kind: repo_type for repo_type, kind in KIND_OF.items()}
# HF's list sorts, by the Repository field they order on.
SORTS = {"createdAt": "created_at", "lastModified": "updated_at", "downloads": "downloads"}


@register_resolver
def catalog_revision(*, user: User | AnonymousUser, repo_type: str, namespace: str, name: str,
                     revision: str) -> Revision | None:
    """Adapters (model repos) and datasets (dataset repos); their versions are the revisions.

    A revision is `main`, a version's commit id, `v<N>` or `<N>`. `main` is the latest published version; before
    any is published, the latest version the caller may see (so an owner can pull a draft with a token).
    A repository or revision the caller may not see answers as a missing one; a taken-down repository says why,
    as the catalog's own routes do.
    """
    repo = (Repository.objects.select_related("owner", "origin")
            .filter(kind=KIND_OF[repo_type], owner__username=namespace, name=name).first())
    if repo is None:
        return None
    visible = list(versions_visible_to(user, listed=True).filter(repository=repo).select_related("origin")
                   .order_by("-number"))
    if not visible:
        withdrawal = withdrawal_of(repo.versions.all())
        if withdrawal:
            raise HubError(REPO_NOT_FOUND, withdrawal.message, status=410 if withdrawal.gone else 404)
        return None
    version = _named(visible, revision)
    if version is None:
        raise HubError(REVISION_NOT_FOUND, f"{revision!r} is not a revision of {repo.full_name}: use main, a commit "
                                           "id, v<N> or <N>")
    return _catalog_revision(repo, version, visible)


def catalog_repositories(*, user: User | AnonymousUser, repo_type: str, search: str = "", author: str = "",
                         tags: Sequence[str] = (), task: str = "") -> QuerySet[Repository]:
    """The repositories HF's list routes show, each with its versions visible to `user` prefetched for `main`."""
    filters = RepositoryFilters(owner=author, search=search, task=task)
    repos = repositories_visible(user, KIND_OF[repo_type], filters)
    for tag in tags:
        tagged = versions_visible_to(user, listed=True).filter(repository=OuterRef("pk"), tags__name=tag.lower())
        repos = repos.filter(Exists(tagged))
    versions = (versions_visible_to(user, listed=True).order_by("-number").select_related("origin")  # cardData names an origin
                .prefetch_related("tags", "files__blob"))
    return repos.prefetch_related(Prefetch("versions", queryset=versions, to_attr="visible_versions"))


def catalog_main_revision(repo: Repository) -> Revision:
    """`main` of a repository from `catalog_repositories`."""
    return _catalog_revision(repo, _main(repo.visible_versions), repo.visible_versions)


def _main(visible: list[Version]) -> Version:
    return next((v for v in visible if v.is_public), visible[0])


def _named(versions: list[Version], revision: str) -> Version | None:
    """The version a revision names, among `versions` (newest first)."""
    if revision == MAIN:
        return _main(versions)
    return next((v for v in versions if revision.lower() in {v.commit_sha, f"v{v.number}", str(v.number)}), None)


def _card_data(repo: Repository, version: Version) -> dict | None:
    """The card's front matter, plus `origin` for a version mirrored from another hub."""
    origin = origin_of(repo, getattr(version, "origin", None))
    return {**version.card, "origin": origin} if origin else (version.card or None)


def _catalog_revision(repo: Repository, version: Version, visible: list[Version]) -> Revision:
    """A version as a revision; `visible` are the repository's versions the caller may see, newest first."""
    prefetch_related_objects([version], "tags", "files__blob")
    stored = {f.path: f for f in version.files.all()}
    if version.is_listed:  # held at its origin: each file redirects to where this hub downloads it from
        files = tuple(HubFile(path=f["path"], sha256=f["sha256"], size=f["size"]) for f in version.origin.listed_files)
    else:
        files = tuple(HubFile(path=p, sha256=f.blob.sha256, size=f.blob.size) for p, f in stored.items())

    def older() -> list[Revision]:
        before = [v for v in visible if v.number < version.number]
        prefetch_related_objects(before, "tags", "files__blob")
        return [revision, *(_catalog_revision(repo, v, visible) for v in before)]

    repo_type = REPO_TYPE_OF[repo.kind]
    revision = Revision(
        repo_type=repo_type,
        repo_id=repo.full_name,
        sha=version.commit_sha,
        files=files,
        # The catalog's own download path: the primary file's full GET counts one download.
        serve=lambda request, file: (serve_listed_file(version, file.path) if version.is_listed
                                     else serve_version_file(request, version, stored[file.path])),
        author=repo.owner.username,
        created_at=repo.created_at,
        last_modified=version.published_at or version.created_at,
        private=not version.is_public,
        downloads=repo.downloads,
        tags=tuple(t.name for t in version.tags.all()),
        pipeline_tag=version.task or None,
        library_name="peft" if repo_type == "model" else None,
        card_data=_card_data(repo, version),
        ref=f"v{version.number}",
        title=f"v{version.number} ({version.get_state_display().lower()})",
        older=older,
    )
    return revision
