"""The OCI distribution spec's pull API (`/v2/`): manifests, blobs by digest (with Range) and tags, so an ORAS or
Ollama client pulls the GGUF files of a stack or an adapter version. Read-only; thin views over `hub.oci.selectors`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.catalog.downloads import serve_blob
from hub.hfcompat.errors import REVISION_NOT_FOUND, HubError
from hub.hfcompat.errors import exception_handler as hub_exception_handler
from hub.oci import selectors

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """The spec's error body, `{"errors": [{"code", "message"}]}`; a hidden repository answers as a missing one."""
    if isinstance(exc, HubError):
        code = "MANIFEST_UNKNOWN" if exc.code == REVISION_NOT_FOUND else "NAME_UNKNOWN"
        exc = selectors.OciError(code, exc.message)
    if isinstance(exc, selectors.OciError):
        return Response({"errors": [{"code": exc.code, "message": exc.message, "detail": {}}]}, status=exc.status,
                        headers=API_VERSION)
    return hub_exception_handler(exc, context)


class OciView(APIView):
    renderer_classes = [JSONRenderer]

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        return exception_handler

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[JSONRenderer, str]:
        # Clients accept manifest types (answered as they are); everything else here, errors included, is JSON.
        return JSONRenderer(), JSONRenderer.media_type


class ApiRoot(OciView):
    """GET /v2/: the registry speaks the distribution API."""

    def get(self, request: Request) -> Response:
        return Response({}, headers=API_VERSION)


class ManifestDetail(OciView):
    """GET/HEAD /v2/<name>/manifests/<tag or digest>."""

    def get(self, request: Request, name: str, reference: str) -> HttpResponse:
        manifest = selectors.manifest_get(user=request.user, name=name, reference=reference,
                                          accept=request.headers.get("Accept", ""))
        body = b"" if request.method == "HEAD" else manifest.body  # a HEAD tells the digest and the size only
        response = HttpResponse(body, content_type=manifest.media_type)
        for header, value in {**API_VERSION, "Docker-Content-Digest": manifest.digest, "ETag": f'"{manifest.digest}"',
                              "Content-Length": str(len(manifest.body))}.items():
            response[header] = value
        return response


class BlobDetail(OciView):
    """GET/HEAD /v2/<name>/blobs/<digest>, with Range: the blob store's bytes, content-addressed."""

    def get(self, request: Request, name: str, digest: str) -> HttpResponse:
        blob, filename = selectors.blob_get(user=request.user, name=name, digest=digest)
        return serve_blob(request._request, sha256=blob.sha256, size=blob.size, filename=filename,
                          extra_headers={**API_VERSION, "Docker-Content-Digest": digest})


class TagList(OciView):
    """GET /v2/<name>/tags/list."""

    def get(self, request: Request, name: str) -> Response:
        return Response({"name": name, "tags": selectors.tags_of(request.user, name)}, headers=API_VERSION)
