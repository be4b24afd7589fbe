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
