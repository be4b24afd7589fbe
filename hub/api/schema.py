"""The OpenAPI schema's common parts: the error shape every 4xx answers with, Bearer tokens, who may call anonymously.

Views declare only what is particular to them (their success bodies, a 409 or 413 they can answer); what every
operation shares is added here, once, by the schema class the API uses (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS).
"""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers

BEARER = "bearerAuth"
# For views whose permission classes let anonymous calls through but which answer them 401 themselves.
BEARER_REQUIRED = [{BEARER: []}]

# Every operation can answer these (a malformed parameter or body, an unknown or revoked token, a token or user
# without the right, a missing object or an exhausted cursor); the description says what they mean here.
COMMON_ERRORS = {
    400: "invalid parameters or body (`details` says which field, when one is to blame)",
    401: "the token is unknown or revoked, or the operation needs one",
    403: "this user or token may not do this (a read token cannot write)",
    404: "no such object visible to you, or an unknown path or cursor",
}
BODY_ERRORS = {
    413: "the request body is larger than the hub reads in one request (send large files in chunks: /api/v1/uploads)",
    415: "the request body is in a media type the operation does not read",
}


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField(help_text="stable, for programs: e.g. `not_found`, `invalid`, `upload_incomplete`")
    message = serializers.CharField(help_text="for people")
    details = serializers.JSONField(required=False, help_text="more about the error, e.g. the invalid fields")


class ErrorOut(serializers.Serializer):
    """What every 4xx of the API answers (hub/api/errors.py)."""

    error = ErrorDetailOut()


def api_error(description: str) -> OpenApiResponse:
    """A response in the error shape, for the statuses a view adds to the common ones (409, 413, 429 ...)."""
    return OpenApiResponse(ErrorOut, description=description)


def binary(description: str) -> OpenApiResponse:
    return OpenApiResponse(OpenApiTypes.BINARY, description=description)


# A file download (hub/catalog/downloads.py): the bytes, a range of them, or a redirect to the object store.
DOWNLOAD_RESPONSES = {
    (200, "application/octet-stream"): binary("the whole file; `ETag` is its sha256"),
    (206, "application/octet-stream"): binary("the bytes of the `Range` asked for"),
    302: OpenApiResponse(description="redirect to a presigned object-store URL (S3 blob stores)"),
    304: OpenApiResponse(description="`If-None-Match` names the file's ETag: it has not changed"),
    416: OpenApiResponse(description="the `Range` starts past the end; `Content-Range: bytes */size`"),
}
DOWNLOAD_HEADERS = [
    OpenApiParameter("Range", str, OpenApiParameter.HEADER,
                     description="`bytes=start-end`, `bytes=start-` or `bytes=-suffix`; another form is ignored"),
    OpenApiParameter("If-Range", str, OpenApiParameter.HEADER, description="the Range applies only to this ETag"),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="an ETag you hold: 304 if it is "
                                                                                 "still the file's"),
    OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200, 206, 302, 304, 416], required=True,
                     description="the file's sha256, quoted"),
    OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, response=[206, 416], required=True,
                     description="`bytes start-end/size` (206), `bytes */size` (416)"),
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[302], required=True,
                     description="the presigned URL"),
]


def download_schema(errors: dict[int, OpenApiResponse] | None = None) -> Callable:
    """`extend_schema` of a view that serves a file, with the errors it adds to the common ones."""
    return extend_schema(responses={**DOWNLOAD_RESPONSES, **(errors or {})}, parameters=DOWNLOAD_HEADERS)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "hub.accounts.auth.BearerTokenAuthentication"
    name = BEARER

    def get_security_definition(self, auto_schema: AutoSchema) -> dict:
        return {
            "type": "http", "scheme": "bearer",
            "description": "an API token from POST /api/v1/auth/tokens (`read` or `write` scope). Browsers signed "
                           "in to the site are also authenticated by their session cookie (writes need CSRF).",
        }


class HubAutoSchema(AutoSchema):
    def get_auth(self) -> list[dict]:
        auths = super().get_auth()
        # A permission with open reads (accounts' TokenScopePermission) lets anyone read; views narrow what anonymous
        # callers see, but do not refuse them.
        perms = self.view.get_permissions()
        open_reads = bool(perms) and all(getattr(p, "open_reads", False) for p in perms)
        if open_reads and self.method in permissions.SAFE_METHODS and {} not in auths:
            auths.append({})
        return auths

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        errors = {**COMMON_ERRORS, **(BODY_ERRORS if self._get_request_body() else {})}
        for code, description in errors.items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(api_error(description), str(code),
                                                                   media_types=["application/json"])
        return dict(sorted(responses.items()))


def api_paths_only(endpoints: list[tuple], **kwargs) -> list[tuple]:
    """The schema documents /api/v1/; the Hugging Face-compatible routes follow the Hub's own API and errors."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]
