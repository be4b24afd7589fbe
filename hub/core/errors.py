"""The one error type of the hub's services.

A service that refuses raises a ServiceError (or a subclass named for its domain): a stable `code` for
clients, a `message` for people that names the field, file or item and what was expected, and the HTTP
status it answers with. The API's exception handler and the pages' middleware answer it, so no view maps
errors one by one, and a page never answers 500 for a refusal.
"""

from __future__ import annotations


class ServiceError(Exception):
    code = "invalid"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details


class ServiceUnavailable(ServiceError):
    """Something the hub depends on (the database, the blob store) cannot be reached right now: 503 with
    Retry-After. Nothing of the request was recorded, so the client may send it again as it is."""

    code = "unavailable"
    status = 503

    def __init__(self, message: str, *, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, code=code)
        if retry_after is None:
            from django.conf import settings

            retry_after = settings.OUTAGE_RETRY_AFTER_SECONDS
        self.retry_after = retry_after
