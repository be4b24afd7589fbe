"""Errors answered the way the Hub answers them, so huggingface_hub raises its own exceptions.

The client picks its exception class from `X-Error-Code` (`RepoNotFound` → RepositoryNotFoundError,
`RevisionNotFound` → RevisionNotFoundError, `EntryNotFound` → EntryNotFoundError) and shows `X-Error-Message`
and the body's `{"error": "..."}`. Something that exists but is hidden from the caller (a version that is not
published and not theirs) answers exactly as something missing: 404 with the same code and message, so the answer
never tells that it exists. A bad token answers 401 with the Hub's own message for it, which the client reports as
a credentials problem rather than a missing repository.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.response import Response

from hub.api.errors import exception_handler as api_exception_handler

REPO_NOT_FOUND = "RepoNotFound"
REVISION_NOT_FOUND = "RevisionNotFound"
ENTRY_NOT_FOUND = "EntryNotFound"
BAD_CREDENTIALS = "Invalid credentials in Authorization header"


class HubError(Exception):
    """A refusal with one of the Hub's error codes: a 404, the Hub's answer for what a caller cannot get (410 for a
    mirrored item its origin hub took down)."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None, status: int = 404):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.status = status


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's hook for the Hub-compatible views: the hub's own handler, reshaped into the Hub's error format."""
    if isinstance(exc, HubError):
        response = Response({"error": exc.message}, status=exc.status, headers=exc.headers)
        response["X-Error-Code"] = exc.code
        return _with_message(response, exc.message)
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    message = response.data["error"]["message"]
    response.data = {"error": message}
    bad_token = isinstance(exc, exceptions.AuthenticationFailed)
    return _with_message(response, BAD_CREDENTIALS if bad_token else message)


def _with_message(response: Response, message: str) -> Response:
    response["X-Error-Message"] = " ".join(message.split())  # a header holds one line
    return response
