"""What the hub holds: base models, adapter and dataset repositories, their versions and files.

Adapters and datasets are one `Repository` model with a `kind`: they share owners, names,
versions, files, cards, states and downloads, and differ only in what validation checks.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$",
    "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 96 characters)",
)


class Blob(models.Model):
    """One stored file's content, addressed by its sha256 (the blob store holds the bytes)."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.size} B)"


class Tag(models.Model):
    name = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BaseModel(models.Model):
    """A base model adapters are trained for. `module_shapes` is what an adapter must match."""

    name = models.CharField(max_length=200, unique=True)  # "owner/name", as on other hubs
    architecture = models.CharField(max_length=64)
    parameter_count = models.BigIntegerField()
    license = models.CharField(max_length=64)
    description = models.TextField(blank=True)
    config = models.JSONField(default=dict)
    module_shapes = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def owner_name(self) -> tuple[str, str]:
        owner, _, name = self.name.partition("/")
        return owner, name


class BaseModelFile(models.Model):
    base_model = models.ForeignKey(BaseModel, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["base_model", "path"], name="unique_base_model_file")]

    def __str__(self) -> str:
        return f"{self.base_model.name}/{self.path}"

    @property
    def is_gguf(self) -> bool:
        return self.path.endswith(".gguf")


class RepoKind(models.TextChoices):
    ADAPTER = "adapter", "Adapter"
    DATASET = "dataset", "Dataset"


class Repository(models.Model):
    kind = models.CharField(max_length=8, choices=RepoKind.choices)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="repositories")
    name = models.CharField(max_length=96, validators=[NAME_VALIDATOR])
    base_model = models.ForeignKey(BaseModel, null=True, blank=True, on_delete=models.PROTECT, related_name="adapters")
    summary = models.CharField(max_length=300, blank=True)
    downloads = models.BigIntegerField(default=0)
    score = models.FloatField(null=True, blank=True)  # the headline eval score, for ordering
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # PostgreSQL's stored search document (name, summary, the published cards), written only by
    # catalog.services.repository_search_refresh; NULL on SQLite, whose search reads the columns themselves.
    search_document = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "owner", "name"], name="unique_repository_name")]
        # Each list order ends with the primary key (keyset cursors, hub/api/pagination.py), and so do these; the
        # order by score and the search indexes are PostgreSQL's only (migration 0005).
        indexes = [models.Index(fields=["kind", "-downloads", "-id"], name="catalog_repo_popular_idx"),
                   models.Index(fields=["kind", "-created_at", "-id"], name="catalog_repo_newest_idx"),
                   models.Index(fields=["kind", "name", "-id"], name="catalog_repo_name_idx")]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.owner.username}/{self.name}"


class VersionState(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    VALIDATING = "validating", "Validating"
    REJECTED = "rejected", "Rejected"
    PENDING_REVIEW = "pending_review", "Pending review"
    PUBLISHED = "published", "Published"
    UNPUBLISHED = "unpublished", "Unpublished"
    # A version another hub published that this hub lists without holding its files (a peer followed for metadata
    # only or on demand): browsed and searched like a published one, never validated, evaluated, signed or stacked.
    LISTED = "listed", "Listed; its files are held at its origin"


# The states a version is shown to anyone in (the selectors add `listed` only where no bytes are read).
PUBLIC_STATES = (VersionState.PUBLISHED, VersionState.LISTED)


class Version(models.Model):
    """One immutable upload of a repository. Once published its files and card never change."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=VersionState.choices, default=VersionState.UPLOADED)
    state_reason = models.TextField(blank=True)
    # A stable 40-hex revision id, so git-style clients can pin a version.
    commit_sha = models.CharField(max_length=40, unique=True)
    card_text = models.TextField(blank=True)
    card = models.JSONField(default=dict)  # the card's YAML front matter
    license = models.CharField(max_length=64, blank=True)
    task = models.CharField(max_length=64, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="versions")
    base_model = models.ForeignKey(BaseModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    training_datasets = models.ManyToManyField(Repository, blank=True, related_name="trained_versions")
    parent_versions = models.ManyToManyField("self", blank=True, symmetrical=False, related_name="children")
    # While a worker holds a version in `validating`, it holds a lease; an expired lease means the
    # worker died and the version may be claimed again.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    validation_report = models.JSONField(default=dict, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    downloads = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["repository", "-number"]
        constraints = [models.UniqueConstraint(fields=["repository", "number"], name="unique_version_number")]
        # On PostgreSQL also a covering index of (repository, state) for the lists and facets (migration 0009).
        indexes = [models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"{self.repository.full_name}@{self.number}"

    @property
    def is_published(self) -> bool:
        return self.state == VersionState.PUBLISHED

    @property
    def is_public(self) -> bool:
        """Anyone may see it: published here, or listed from another hub (PUBLIC_STATES)."""
        return self.state in PUBLIC_STATES

    @property
    def is_listed(self) -> bool:
        """Listed from another hub, its files held there (VersionOrigin.listed_files says where)."""
        return self.state == VersionState.LISTED

    @staticmethod
    def make_commit_sha(repository_id: int, number: int, file_digests: list[tuple[str, str]]) -> str:
        seed = f"{repository_id}:{number}:" + ",".join(f"{p}={s}" for p, s in sorted(file_digests))
        return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()


class VersionFile(models.Model):
    version = models.ForeignKey(Version, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=255)
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="unique_version_file")]

    def __str__(self) -> str:
        return f"{self.version}/{self.path}"

    @property
    def size(self) -> int:
        return self.blob.size

    @property
    def sha256(self) -> str:
        return self.blob.sha256


class UploadSession(models.Model):
    """A resumable upload of one large file: chunks are appended at the offset the server reports."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETE = "complete", "Complete"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_sessions")
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField()
    received = models.BigIntegerField(default=0)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    blob = models.ForeignKey(Blob, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.filename} ({self.received}/{self.size})"


class RepositoryOrigin(models.Model):
    """Where a mirrored repository comes from (hub.federation mirrors it; local repositories have none)."""

    repository = models.OneToOneField(Repository, on_delete=models.CASCADE, related_name="origin")
    hub = models.URLField(max_length=300)  # the origin hub's base URL, no trailing slash
    url = models.URLField(max_length=500)  # the repository's page on the origin
    owner = models.CharField(max_length=150)  # the namespace and name on the origin
    name = models.CharField(max_length=96)

    class Meta:
        indexes = [models.Index(fields=["hub"])]

    def __str__(self) -> str:
        return f"{self.owner}/{self.name} on {self.hub}"


class FetchState(models.TextChoices):
    METADATA = "metadata", "Metadata only"
    FETCHING = "fetching", "Fetching files"
    MIRRORED = "mirrored", "Mirrored"
    REFUSED = "refused", "Refused"
    TAKEN_DOWN = "taken_down", "Taken down at its origin"


class VersionOrigin(models.Model):
    """A mirrored version: the ActivityStreams object it was built from, and how far its files were fetched."""

    version = models.OneToOneField(Version, on_delete=models.CASCADE, related_name="origin")
    object_id = models.URLField(max_length=500, unique=True)  # the AS2 id: the version's URL on its origin
    number = models.PositiveIntegerField()  # the version number on the origin
    peer_url = models.URLField(max_length=300)  # the hub we received it from (the origin, or a hub announcing it)
    received_at = models.DateTimeField(default=timezone.now)
    fetch_state = models.CharField(max_length=12, choices=FetchState.choices, default=FetchState.METADATA)
    refusal = models.TextField(blank=True)
    activity = models.JSONField(default=dict, blank=True)  # the signed Create it came in, to Announce it again
    # `published` of the newest origin activity acted on (Create, Delete): an older one, replayed, changes nothing.
    origin_published_at = models.DateTimeField(null=True, blank=True)
    # A listed version's files, held at its origin: [{path, sha256, size, url}], `url` downloading it through this
    # hub (which redirects to the origin, or fetches it on demand). Empty once the files are held here.
    listed_files = models.JSONField(default=list, blank=True)
    on_demand = models.BooleanField(default=False)  # listed: the first download fetches its files here

    def __str__(self) -> str:
        return f"{self.version} from {self.object_id}"


class DownloadFlush(models.Model):
    """A batch of buffered download counts already folded into the rows (hub/catalog/download_counts.py): recorded
    in the same transaction as the counts, so that no batch is folded twice."""

    batch = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.batch
