"""The part of the Hub's HTTP API that huggingface_hub writes with: create_repo, preupload, the Git LFS batch API
and its upload URLs, commit, and validate-yaml. Thin views over `hub.hfcompat.services` (the protocol is described
there); refusals answer in the Hub's error format, which the client raises with the message."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from hub.api.parsers import JSONParser
from hub.catalog.models import VersionState
from hub.core.params import ascii_int
from hub.core.throttling import rate_check
from hub.hfcompat import services
from hub.hfcompat.views import HubView
from workers.engine.cards import parse_card
from workers.engine.errors import EngineInputError


def endpoint_of(request: Request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def repo_url(request: Request, repo_type: str, repo_id: str) -> str:
    """The repository's URL as the client parses it back into a type and an id (`RepoUrl`)."""
    return f"{endpoint_of(request)}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


class RepoCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=96)
    organization = serializers.CharField(required=False, allow_null=True, default=None)
    type = serializers.CharField(required=False, allow_null=True, default="model")
    private = serializers.BooleanField(required=False, allow_null=True, default=None)


class RepoCreate(HubView):
    """POST /api/repos/create: `create_repo` (models and datasets; `exist_ok` reads the 409)."""

    def post(self, request: Request) -> Response:
        data = RepoCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        repo_type = data.validated_data["type"] or "model"
        repo_id = f"{request.user.username}/{data.validated_data['name']}"
        try:
            repo = services.hub_repo_create(user=request.user, repo_type=repo_type, name=data.validated_data["name"],
                                            namespace=data.validated_data["organization"],
                                            private=data.validated_data["private"])
        except services.HubWriteError as exc:
            if exc.code != "repo_exists":
                raise
            # The Hub's 409 names the repository too: `exist_ok=True` reads its URL from it.
            return Response({"error": exc.message, "url": repo_url(request, repo_type, repo_id)}, status=409,
                            headers={"X-Error-Message": exc.message})
        return Response({"url": repo_url(request, repo_type, repo.full_name), "name": repo.full_name})


class ValidateYamlIn(serializers.Serializer):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)
    repoType = serializers.CharField(required=False, default="model")


class ValidateYaml(HubView):
    """POST /api/validate-yaml: the client checks a README.md's metadata before uploading anything, and raises
    `ValueError("Invalid metadata in README.md ...")` with these errors."""

    permission_classes = []  # a pure check of the text sent

    def post(self, request: Request) -> Response:
        data = ValidateYamlIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            parse_card(data.validated_data["content"])
        except EngineInputError as exc:
            return Response({"errors": [{"message": str(exc)}], "warnings": []}, status=400,
                            headers={"X-Error-Message": " ".join(str(exc).split())})
        return Response({"errors": [], "warnings": []})


class PreuploadFileIn(serializers.Serializer):
    path = serializers.CharField(max_length=1000)
    size = serializers.IntegerField(min_value=0)


class PreuploadIn(serializers.Serializer):
    files = PreuploadFileIn(many=True, max_length=1000)


class Preupload(HubView):
    """POST /api/{models,datasets}/<id>/preupload/<rev>: how each file is uploaded (LFS, except empty files)."""

    def post(self, request: Request, repo_type: str, namespace: str, name: str, revision: str) -> Response:
        repo = services.own_repository(user=request.user, repo_type=repo_type, namespace=namespace, name=name)
        data = PreuploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        files = [services.PreuploadFile(**f) for f in data.validated_data["files"]]
        head = services.head_version(repo, revision)
        return Response({"files": services.preupload_modes(repo=repo, head=head, files=files)})


class LfsJSONParser(JSONParser):
    media_type = "application/vnd.git-lfs+json"


class LfsJSONRenderer(JSONRenderer):
    media_type = "application/vnd.git-lfs+json"


class LfsObjectIn(serializers.Serializer):
    oid = serializers.CharField(max_length=64)
    size = serializers.IntegerField(min_value=0)


class LfsBatchIn(serializers.Serializer):
    operation = serializers.ChoiceField(choices=["upload"])  # downloads go through /resolve/
    objects = LfsObjectIn(many=True, max_length=1000)
    hash_algo = serializers.ChoiceField(choices=["sha256"], default="sha256")


class LfsBatch(HubView):
    """POST [datasets/]<id>.git/info/lfs/objects/batch: the Git LFS batch API, for uploads."""

    parser_classes = [LfsJSONParser, JSONParser]
    renderer_classes = [LfsJSONRenderer, JSONRenderer]

    def post(self, request: Request, repo_type: str, namespace: str, name: str) -> Response:
        services.own_repository(user=request.user, repo_type=repo_type, namespace=namespace, name=name)
        data = LfsBatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        plans = services.lfs_batch_upload(user=request.user,
                                          objects=[services.LfsObject(**o) for o in data.validated_data["objects"]])
        multipart = any(p.parts for p in plans)
        return Response({"transfer": "multipart" if multipart else "basic", "hash_algo": "sha256",
                         "objects": [self.described(request, plan) for plan in plans]})

    @staticmethod
    def described(request: Request, plan: services.LfsUpload) -> dict:
        described = {"oid": plan.obj.oid, "size": plan.obj.size, "authenticated": True}
        if plan.session is None:
            return described  # the store holds it: no actions, nothing to send
        token = services.lfs_upload_token(plan.session)
        upload_url = request.build_absolute_uri(reverse("hfcompat:lfs-upload", args=[token]))
        header = {}
        if plan.parts:
            header = {"chunk_size": str(settings.MAX_CHUNK_BYTES)} | {
                str(part): request.build_absolute_uri(reverse("hfcompat:lfs-upload-part", args=[token, part]))
                for part in range(1, plan.parts + 1)}
        verify_url = request.build_absolute_uri(reverse("hfcompat:lfs-verify"))
        return described | {"actions": {"upload": {"href": upload_url, "header": header},
                                        "verify": {"href": verify_url, "header": {}}}}


class OctetStreamParser(BaseParser):
    """Declares raw bodies; the views stream them from the request themselves, never via request.data."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


class LfsCompletionIn(serializers.Serializer):
    oid = serializers.CharField(max_length=64)


class LfsUpload(HubView):
    """PUT <upload URL>: a whole object (the basic transfer). POST <upload URL>: the multipart transfer's completion.

    The URL is the capability (signed, naming the caller's upload session), so the client sends no credentials.
    """

    authentication_classes = []
    permission_classes = []
    parser_classes = [OctetStreamParser]
    renderer_classes = [LfsJSONRenderer, JSONRenderer]

    def put(self, request: Request, token: str) -> Response:
        session = services.lfs_session_for(token)
        session = services.lfs_put_part(session=session, offset=0, stream=request._request,
                                        length=self.content_length(request))
        services.lfs_complete(session=session, oid=session.filename)
        return Response({}, headers={"ETag": f'"{session.filename}"'})

    def post(self, request: Request, token: str) -> Response:
        session = services.lfs_session_for(token)
        data = LfsCompletionIn(data=JSONParser().parse(request._request))
        data.is_valid(raise_exception=True)
        services.lfs_complete(session=session, oid=data.validated_data["oid"])
        return Response({})

    @staticmethod
    def content_length(request: Request) -> int:
        length = ascii_int(request.META.get("CONTENT_LENGTH") or "")
        if length is None:
            raise services.HubWriteError("send the upload with a Content-Length", code="length_required", status=411)
        return length


class LfsUploadPart(LfsUpload):
    """PUT <upload URL>/<part>: one part of the multipart transfer (parts of MAX_CHUNK_BYTES, from 1)."""

    def put(self, request: Request, token: str, part: int) -> Response:
        session = services.lfs_session_for(token)
        if part < 1:
            raise services.HubWriteError("parts are numbered from 1", code="bad_part")
        offset = (part - 1) * settings.MAX_CHUNK_BYTES
        services.lfs_put_part(session=session, offset=offset, stream=request._request,
                              length=self.content_length(request))
        return Response({}, headers={"ETag": f'"{session.filename}-{part}"'})


class LfsVerify(HubView):
    """POST /api/lfs/verify: the LFS verify action, after an upload."""

    parser_classes = [LfsJSONParser, JSONParser]
    renderer_classes = [LfsJSONRenderer, JSONRenderer]

    def post(self, request: Request) -> Response:
        data = LfsObjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.lfs_verify(user=request.user, **data.validated_data)
        return Response({"oid": data.validated_data["oid"], "size": data.validated_data["size"]})


class CommitCreate(HubView):
    """POST /api/{models,datasets}/<id>/commit/<rev>: `create_commit`, and so `upload_file`, `upload_folder`,
    `delete_file` and `hf upload`. Records the commit as a version; `commit_create` answers once it is validated."""

    parser_classes = [OctetStreamParser]

    def post(self, request: Request, repo_type: str, namespace: str, name: str, revision: str) -> Response:
        repo = services.own_repository(user=request.user, repo_type=repo_type, namespace=namespace, name=name)
        if request.query_params.get("create_pr") not in {None, "", "0"}:
            raise services.HubWriteError("nomoat has no pull requests: commit to main", code="no_pull_requests")
        # A commit is an upload: it counts against the same per-user limit as the REST API's (hub/core/throttling.py).
        rate_check("uploads_per_user", f"user:{request.user.pk}", what="uploads")
        commit = services.commit_parse(self.lines(request))
        version = services.hub_commit(user=request.user, repo=repo, revision=revision, commit=commit)
        response = Response({"commitOid": version.commit_sha})
        response.version_id = version.pk  # for commit_create, which waits for validation
        return response

    @staticmethod
    def lines(request: Request):
        """The NDJSON body, line by line, refused past DATA_UPLOAD_MAX_MEMORY_SIZE (file bytes go through LFS)."""
        limit, seen = settings.DATA_UPLOAD_MAX_MEMORY_SIZE, 0
        for line in request._request:
            seen += len(line)
            if seen > limit:
                raise services.HubWriteError(f"the commit payload exceeds {limit} bytes: send files through LFS",
                                             code="too_large", status=413)
            yield line


def _commit_recorded(request: HttpRequest, **kwargs: str) -> HttpResponse:
    return CommitCreate.as_view()(request, **kwargs).render()


@csrf_exempt  # a token-authenticated API, as DRF's views are
async def commit_create(request: HttpRequest, repo_type: str, namespace: str, name: str,
                        revision: str) -> HttpResponse:
    """The commit route: `CommitCreate` records the version (or refuses), then this waits for validation, up to
    HF_COMMIT_WAIT_SECONDS, and answers with the version's commit id; a version the validators reject answers 422
    with their reasons, which the client raises."""
    recorded = await sync_to_async(_commit_recorded)(request, repo_type=repo_type, namespace=namespace, name=name,
                                                     revision=revision)
    version_id = getattr(recorded, "version_id", None)
    if version_id is None:
        return recorded  # refused: the Hub's error answer as it is
    version = await services.version_await_validation(version_id, seconds=settings.HF_COMMIT_WAIT_SECONDS)
    url = f"{repo_url(request, repo_type, version.repository.full_name)}/commit/{version.commit_sha}"
    body = {"success": True, "commitOid": version.commit_sha, "commitUrl": url, "pullRequestUrl": None}
    if version.state != VersionState.REJECTED:
        return JsonResponse(body)
    message = services.rejection_message(version)
    return JsonResponse({**body, "success": False, "error": message}, status=422,
                        headers={"X-Error-Message": " ".join(message.split())})
