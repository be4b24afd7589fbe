"""REST API v1 for the catalog: thin views over selectors, explicit output serializers."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.errors import ApiError
from hub.api.fields import TextField
from hub.api.filters import HubFilterBackend, SelectorFilterSet
from hub.api.parsers import JSONParser
from hub.api.schema import BEARER_REQUIRED, api_error, download_schema
from hub.catalog import selectors
from hub.catalog.downloads import serve_blob, serve_listed_file, serve_version_file
from hub.catalog.models import BaseModel, Blob, Repository, UploadSession, Version, VersionState
from hub.catalog.uploads import (
    IncomingFile,
    upload_session_append,
    upload_session_complete,
    upload_session_create,
    upload_session_get,
    upload_version,
)
from hub.core.params import ascii_int
from workers.engine.errors import quote


class OctetStreamParser(BaseParser):
    """Declares raw chunk bodies; views stream them from the request themselves, never via request.data."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class FileOut(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.CharField(required=False, help_text="where it downloads (with Range; ETag = sha256)")
    torrent = serializers.CharField(required=False, help_text="BitTorrent v1+v2 hybrid .torrent (web seeds: every URL "
                                                               "that serves the file)")
    metalink = serializers.CharField(required=False, help_text="Metalink 4 (.meta4): every source, per-piece sha-256")
    magnet = serializers.CharField(required=False, help_text="magnet:?xt=urn:btih:…&xt=urn:btmh:…&ws=…")
    held_here = serializers.BooleanField(required=False, help_text="false for a file of a version listed from "
                                                                   "another hub: `url` redirects to its origin, or "
                                                                   "fetches it on first download (503 meanwhile)")


# More fields of a file entry ({path, size, sha256} -> extra fields), registered by apps above the catalog
# (hub.provenance adds torrent, metalink and magnet). Each is called with the entry, its blob (loaded with the
# relations in selectors.BLOB_RELATIONS) and the request (or None).
FILE_ENTRY_EXTRAS: list[Callable[[dict, Blob, Request | None], dict]] = []


def file_entry(path: str, blob: Blob, request: Request | None = None, url: str | None = None) -> dict:
    """A file as the API lists it; `url` (where it downloads) goes into the entry when given."""
    entry = {"path": path, "size": blob.size, "sha256": blob.sha256, **({"url": url} if url else {})}
    for extra in FILE_ENTRY_EXTRAS:
        entry |= extra(entry, blob, request)
    return entry


class BaseModelOut(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = BaseModel
        fields = ["name", "architecture", "parameter_count", "license", "description", "module_shapes",
                  "files", "created_at", "url"]

    @extend_schema_field(FileOut(many=True))
    def get_files(self, obj: BaseModel) -> list[dict]:
        return [{"path": f.path, "size": f.blob.size, "sha256": f.blob.sha256} for f in obj.files.all()]

    def get_url(self, obj: BaseModel) -> str:
        owner, name = obj.owner_name
        return reverse("api:base-model-detail", kwargs={"owner": owner, "name": name})


class LineageOut(serializers.Serializer):
    base_model = serializers.CharField(allow_null=True)
    training_datasets = serializers.ListField(child=serializers.CharField(), help_text="owner/name of each")
    parents = serializers.ListField(child=serializers.CharField(), help_text="the versions it was derived from")


class OriginOut(serializers.Serializer):
    hub = serializers.URLField(help_text="the origin hub's base URL")
    url = serializers.URLField(help_text="the item's page on its origin")
    owner = serializers.CharField(help_text="its namespace on the origin")
    name = serializers.CharField()
    version = serializers.IntegerField(allow_null=True, help_text="the version number on the origin")


class VersionOut(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()
    origin = serializers.SerializerMethodField()
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    base_model = serializers.SlugRelatedField(read_only=True, slug_field="name", allow_null=True)
    created_by = serializers.SlugRelatedField(read_only=True, slug_field="username")
    lineage = serializers.SerializerMethodField()

    class Meta:
        model = Version
        fields = ["number", "state", "state_reason", "commit_sha", "license", "task", "tags", "card", "card_text",
                  "base_model", "lineage", "stats", "validation_report", "downloads", "created_by", "created_at",
                  "published_at", "files", "origin"]

    @extend_schema_field(OriginOut(allow_null=True))
    def get_origin(self, obj: Version) -> dict | None:
        return selectors.origin_of(obj.repository, getattr(obj, "origin", None))

    @extend_schema_field(FileOut(many=True))
    def get_files(self, obj: Version) -> list[dict]:
        request = self.context.get("request")
        repo = obj.repository

        def url(path: str) -> str:
            return reverse(f"api:{repo.kind}-file", kwargs={"owner": repo.owner.username, "name": repo.name,
                                                            "number": obj.number, "path": path})

        if obj.is_listed:
            return FileOut([{"path": f["path"], "size": f["size"], "sha256": f["sha256"], "url": url(f["path"]),
                             "held_here": False} for f in obj.origin.listed_files], many=True).data
        return FileOut([file_entry(f.path, f.blob, request, url(f.path)) for f in obj.files.all()], many=True).data

    @extend_schema_field(LineageOut)
    def get_lineage(self, obj: Version) -> dict:
        return {
            "base_model": obj.base_model.name if obj.base_model else None,
            "training_datasets": [d.full_name for d in obj.training_datasets.all()],
            "parents": [str(v) for v in obj.parent_versions.all()],
        }


class RepositoryOut(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(read_only=True, slug_field="username")
    base_model = serializers.SlugRelatedField(read_only=True, slug_field="name", allow_null=True)
    full_name = serializers.CharField(read_only=True)
    url = serializers.SerializerMethodField()
    origin = serializers.SerializerMethodField()

    class Meta:
        model = Repository
        fields = ["kind", "full_name", "owner", "name", "summary", "base_model", "downloads", "score",
                  "created_at", "updated_at", "url", "origin"]

    @extend_schema_field(OriginOut(allow_null=True))
    def get_origin(self, obj: Repository) -> dict | None:
        return selectors.origin_of(obj, None, getattr(obj, "origin_version", None))

    def get_url(self, obj: Repository) -> str:
        return reverse(f"api:{obj.kind}-detail", kwargs={"owner": obj.owner.username, "name": obj.name})


class VersionBriefOut(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.ChoiceField(choices=VersionState.choices)
    created_at = serializers.DateTimeField()
    commit_sha = serializers.CharField()


class RepositoryDetailOut(RepositoryOut):
    versions = serializers.SerializerMethodField()

    class Meta(RepositoryOut.Meta):
        fields = [*RepositoryOut.Meta.fields, "versions"]

    @extend_schema_field(VersionBriefOut(many=True))
    def get_versions(self, obj: Repository) -> list[dict]:
        versions = selectors.versions_of(self.context["request"].user, obj, listed=True)
        return [{"number": v.number, "state": v.state, "created_at": v.created_at, "commit_sha": v.commit_sha}
                for v in versions]


# --- uploads ----------------------------------------------------------------------------------------------------------


class UploadSessionOut(serializers.ModelSerializer):
    offset = serializers.IntegerField(source="received")
    sha256 = serializers.CharField(source="blob_id", allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = UploadSession
        fields = ["id", "filename", "size", "offset", "state", "sha256", "created_at", "url"]

    def get_url(self, obj: UploadSession) -> str:
        return reverse("api:upload-session", kwargs={"session_id": obj.pk})


class UploadSessionIn(serializers.Serializer):
    filename = TextField(max_length=255)
    size = serializers.IntegerField(min_value=0)


class UploadCompleteIn(serializers.Serializer):
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$")


class VersionUploadIn(serializers.Serializer):
    """Multipart: `files` (repeated) or one `archive`. JSON: `uploads` maps file paths to completed session ids."""

    base_model = TextField(required=False, allow_blank=True)
    summary = TextField(required=False, allow_blank=True, max_length=300)
    uploads = serializers.DictField(child=serializers.UUIDField(), required=False)


class VersionFilesIn(serializers.Serializer):
    """The multipart form of an upload (documentation only: the view reads request.FILES)."""

    files = serializers.ListField(child=serializers.FileField(), required=False,
                                  help_text="the version's files, one part each (or send `archive`)")
    archive = serializers.FileField(required=False, help_text="one .zip or .tar.gz holding the version's files")
    base_model = TextField(required=False, allow_blank=True)
    summary = TextField(required=False, allow_blank=True, max_length=300)


class VersionSessionsIn(serializers.Serializer):
    """The JSON form of an upload: files sent before through resumable upload sessions."""

    uploads = serializers.DictField(child=serializers.UUIDField(), help_text="file path → completed upload session id")
    base_model = TextField(required=False, allow_blank=True)
    summary = TextField(required=False, allow_blank=True, max_length=300)


class VersionCreatedOut(VersionOut):
    status_url = serializers.URLField(help_text="poll this for the validation's outcome")
    page_url = serializers.URLField()
    status_page_url = serializers.URLField()

    class Meta(VersionOut.Meta):
        fields = [*VersionOut.Meta.fields, "status_url", "page_url", "status_page_url"]


def version_created_response(request: Request, version: Version) -> Response:
    repo = version.repository
    kwargs = {"owner": repo.owner.username, "name": repo.name, "number": version.number}
    return Response({
        **VersionOut(version).data,
        "status_url": request.build_absolute_uri(reverse(f"api:{repo.kind}-version", kwargs=kwargs)),
        "page_url": request.build_absolute_uri(reverse(f"{repo.kind}-version-page", kwargs=kwargs)),
        "status_page_url": request.build_absolute_uri(reverse(f"{repo.kind}-version-status", kwargs=kwargs)),
    }, status=202)


class BaseModelList(generics.ListAPIView):
    serializer_class = BaseModelOut
    cursor_ordering = ("name",)

    def get_queryset(self):
        return selectors.base_models_all()


class BaseModelDetail(APIView):
    @extend_schema(responses=BaseModelOut)
    def get(self, request: Request, owner: str, name: str) -> Response:
        return Response(BaseModelOut(selectors.base_model_get(f"{owner}/{name}")).data)


class BaseModelFileDownload(APIView):
    @download_schema()
    def get(self, request: Request, owner: str, name: str, path: str):
        base = selectors.base_model_get(f"{owner}/{name}")
        file = next((f for f in base.files.all() if f.path == path), None)
        if file is None:
            from django.http import Http404

            raise Http404(f"{path} is not a file of base model {base.name}")
        return serve_blob(request._request, sha256=file.blob.sha256, size=file.blob.size, filename=path)


class RepositoryFilterSet(SelectorFilterSet):
    """The adapter and dataset lists' parameters; `selectors.repositories_visible` applies them."""

    base_model = filters.CharFilter(help_text="base model name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    tag = filters.CharFilter(help_text="a tag on any visible version")
    task = filters.CharFilter(help_text="the task declared in a card")
    owner = filters.CharFilter(help_text="owner username")
    license = filters.CharFilter(help_text="SPDX id")
    # Empty, like absent, means any state.
    state = filters.ChoiceFilter(choices=VersionState.choices,
                                 help_text="version state (owners and moderators see non-published states)",
                                 error_messages={"invalid_choice": f"must be one of {', '.join(VersionState.values)}"})
    search = filters.CharFilter(help_text="full-text search over name, summary and card")
    hub = filters.CharFilter(help_text="'local' for this hub's own items, or a hub's base URL for those mirrored from it")
    # Empty, like absent, means any.
    curated = filters.ChoiceFilter(choices=[("", "any"), ("true", "true"), ("false", "false")],
                                   help_text="true: only those with a version a moderator marked curated",
                                   error_messages={"invalid_choice": "must be true or false"})
    ordering = filters.CharFilter(help_text="newest (the default, also for any other value) | downloads | score | name"
                                            " | relevance (with search, on PostgreSQL: the best matches among the "
                                            f"{selectors.RANKED_CANDIDATES:,} most downloaded and up to as many whose name "
                                            "matches)")

    def select(self, queryset, values):
        kind = self.request.parser_context["kwargs"]["kind"]  # the view's URL kwargs, as DRF hands them on
        return selectors.repositories_visible(self.request.user, kind, selectors.RepositoryFilters(**values))


class RepositoryList(generics.ListAPIView):
    serializer_class = RepositoryOut
    filter_backends = [HubFilterBackend]
    filterset_class = RepositoryFilterSet
    queryset = Repository.objects.none()  # the FilterSet's selector builds the list (the schema reads the model)

    def cursor_ordering(self, request: Request) -> tuple[str, ...]:
        return (selectors.ORDERINGS.get(request.query_params.get("ordering", "newest"), "-created_at"), "-pk")


class RepositoryDetail(APIView):
    @extend_schema(responses=RepositoryDetailOut)
    def get(self, request: Request, kind: str, owner: str, name: str) -> Response:
        repo = selectors.repository_get_visible(request.user, kind, owner, name, listed=True)
        return Response(RepositoryDetailOut(repo, context={"request": request}).data)


class VersionListUpload(generics.ListAPIView):
    """GET: the versions of a repository. POST: upload a new version (202; validation runs in a worker)."""

    serializer_class = VersionOut
    cursor_ordering = ("-number",)
    parser_classes = [MultiPartParser, JSONParser]

    def get_queryset(self):
        repo = selectors.repository_get_visible(self.request.user, self.kwargs["kind"], self.kwargs["owner"],
                                                self.kwargs["name"], listed=True)
        return selectors.versions_of(self.request.user, repo, listed=True)

    @extend_schema(request={"multipart/form-data": VersionFilesIn, "application/json": VersionSessionsIn},
                   responses={202: VersionCreatedOut, 413: api_error("a file or the whole upload is too large")})
    def post(self, request: Request, kind: str, owner: str, name: str) -> Response:
        if request.user.username != owner:
            raise ApiError("permission_denied", f"you can upload only to your own namespace ({request.user.username}/…)",
                           status_code=403)
        data = VersionUploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        base_model = None
        if data.validated_data.get("base_model"):
            base_model = BaseModel.objects.filter(name=data.validated_data["base_model"]).first()
            if base_model is None:
                raise ApiError("unknown_base_model", f"base_model {data.validated_data['base_model']!r} is not on this "
                                                     "hub; see /api/v1/base-models")
        uploaded = request.FILES.getlist("files") + request.FILES.getlist("archive")
        session_ids = data.validated_data.get("uploads", {})
        sessions = {path: s for path, s in ((p, UploadSession.objects.filter(pk=i, owner=request.user).first())
                                            for p, i in session_ids.items())}
        missing = [p for p, s in sessions.items() if s is None]
        if missing:
            raise ApiError("unknown_upload", f"{missing[0]}: no upload session {session_ids[missing[0]]} of yours")
        version = upload_version(
            kind=kind, owner=request.user, name=name, base_model=base_model,
            summary=data.validated_data.get("summary", ""), sessions=sessions,
            files=[IncomingFile(path=f.name, stream=f, size=f.size) for f in uploaded],
        )
        return version_created_response(request, version)


class VersionDetail(APIView):
    @extend_schema(responses=VersionOut)
    def get(self, request: Request, kind: str, owner: str, name: str, number: int) -> Response:
        repo = selectors.repository_get_visible(request.user, kind, owner, name, listed=True)
        return Response(VersionOut(selectors.version_get_visible(request.user, repo, number, listed=True),
                                   context={"request": request}).data)


class VersionFileList(APIView):
    @extend_schema(responses=FileOut(many=True))
    def get(self, request: Request, kind: str, owner: str, name: str, number: int) -> Response:
        repo = selectors.repository_get_visible(request.user, kind, owner, name, listed=True)
        version = selectors.version_get_visible(request.user, repo, number, listed=True)
        return Response(VersionOut(version, context={"request": request}).data["files"])


class VersionFileDownload(APIView):
    @download_schema()
    def get(self, request: Request, kind: str, owner: str, name: str, number: int, path: str):
        repo = selectors.repository_get_visible(request.user, kind, owner, name, listed=True)
        version = selectors.version_get_visible(request.user, repo, number, listed=True)
        if version.is_listed:  # held at its origin: through hub.federation's route for it
            return serve_listed_file(version, path)
        return serve_version_file(request._request, version, selectors.version_file_get(version, path))


class UploadSessionCreate(APIView):
    @extend_schema(request=UploadSessionIn, responses={
        201: UploadSessionOut, 413: api_error("the file is larger than one upload may be"),
        429: api_error("you hold too many open upload sessions, or they declare too many bytes")})
    def post(self, request: Request) -> Response:
        data = UploadSessionIn(data=request.data)
        data.is_valid(raise_exception=True)
        session = upload_session_create(owner=request.user, **data.validated_data)
        return Response(UploadSessionOut(session).data, status=201)


def own_session(request: Request, session_id) -> UploadSession:
    """The caller's session; an expired one answers 404 `upload_expired` (and is deleted then)."""
    return upload_session_get(owner=request.user, session_id=session_id)


# ASCII digits, at most 18 (a 64-bit offset): `int()` of thousands of digits is an error, not a number.
CONTENT_RANGE_RE = re.compile(r"bytes ([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18}|\*)")


def chunk_position(request: Request) -> tuple[int, int, int | None]:
    """(offset, length, total or None) of a chunk, from `Content-Range: bytes start-end/total` or `?offset=`."""
    header = request.headers.get("Content-Range")
    if header is not None:
        match = CONTENT_RANGE_RE.fullmatch(header.strip())
        if match is None:
            raise ApiError("bad_content_range", f"Content-Range {quote(header, 60)} is not `bytes start-end/total` "
                                                "with start <= end, in bytes")
        start, end = int(match[1]), int(match[2])
        if end < start:
            raise ApiError("bad_content_range", f"Content-Range ends at byte {end}, before its start {start}")
        return start, end - start + 1, None if match[3] == "*" else int(match[3])
    if "offset" not in request.query_params:
        raise ApiError("offset_required", "send `Content-Range: bytes start-end/total` or `?offset=`")
    offset = ascii_int(request.query_params["offset"])
    if offset is None:
        raise ApiError("bad_offset", f"offset {quote(request.query_params['offset'], 60)} is not a whole number of "
                                     "bytes")
    length = ascii_int(request.META.get("CONTENT_LENGTH") or "0")
    if length is None:
        raise ApiError("bad_content_length", "Content-Length is not a whole number of bytes")
    return offset, length, None


class UploadSessionDetail(APIView):
    parser_classes = [OctetStreamParser]

    @extend_schema(responses=UploadSessionOut, auth=BEARER_REQUIRED)
    def get(self, request: Request, session_id) -> Response:
        if not request.user.is_authenticated:
            raise ApiError("not_authenticated", "sign in to see your uploads", status_code=401)
        return Response(UploadSessionOut(own_session(request, session_id)).data)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: UploadSessionOut,
                   409: api_error("the chunk does not start where the upload is (`GET` tells the offset to resume "
                                  "from), or the session is complete"),
                   413: api_error("the chunk is too large, or goes past the declared size")},
        parameters=[OpenApiParameter("offset", {"type": "integer", "minimum": 0},
                                     description="where this chunk starts (or send Content-Range)"),
                    OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER,
                                     description="`bytes start-end/total` (or `/*`): where this chunk lies")])
    def put(self, request: Request, session_id) -> Response:
        session = own_session(request, session_id)
        offset, length, total = chunk_position(request)
        session = upload_session_append(session=session, offset=offset, stream=request._request, length=length,
                                        total=total)
        return Response(UploadSessionOut(session).data)


class UploadSessionComplete(APIView):
    @extend_schema(request=UploadCompleteIn, responses={
        200: UploadSessionOut, 409: api_error("not every byte has arrived, or the session is already complete")})
    def post(self, request: Request, session_id) -> Response:
        data = UploadCompleteIn(data=request.data)
        data.is_valid(raise_exception=True)
        session = upload_session_complete(session=own_session(request, session_id),
                                          sha256=data.validated_data["sha256"])
        return Response(UploadSessionOut(session).data)
