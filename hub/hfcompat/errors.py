"""Errors answered the way the Hub answers them, so huggingface_hub raises its own exceptions.

The client picks its exception class from `X-Error-Code` (`RepoNotFound` → RepositoryNotFoundError,
`RevisionNotFound` → RevisionNotFoundError, `EntryNotFound` → EntryNotFoundError) and shows `X-Error-Message`
and the body's `{"error": "..."}`. Something that exists but is hidden from the caller (an unpublished version)
answers 401 without credentials and 403 with credentials that may not see it, with the same code, so
`file_exists` and friends still answer False. A bad token answers 401 with the Hub's own message for it, which the
client reports as a credentials problem rather than a missing repository.
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
    """A refusal with one of the Hub's error codes; `hidden` means "exists, but not for this caller"."""

    def __init__(self, code: str, message: str, *, hidden: bool = False, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.hidden = hidden
        self.headers = headers or {}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's hook for the Hub-compatible views: the hub's own handler, reshaped into the Hub's error format."""
    if isinstance(exc, HubError):
        status = 404
        if exc.hidden:
            status = 403 if context["request"].user.is_authenticated else 401
        response = Response({"error": exc.message}, status=status, headers=exc.headers)
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
