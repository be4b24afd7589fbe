"""Every API error is JSON: {"error": {"code": <stable code>, "message": <for humans>, "details": ...}}."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from hub.core.errors import ServiceError


class ApiError(exceptions.APIException):
    """Raise from views and services' callers with a stable code."""

    def __init__(self, code: str, message: str, *, status_code: int = 400, details: object = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details


def _flatten(detail: object) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(v) for v in detail)
    return str(detail)


def as_api_error(exc: ServiceError) -> ApiError:
    error = ApiError(exc.code, exc.message, status_code=exc.status, details=exc.details)
    # A throttle's refusal says when to come back: DRF's handler turns `wait` into Retry-After.
    error.wait = getattr(exc, "retry_after", None)
    return error


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        exc = as_api_error(exc)
    elif isinstance(exc, Http404):
        exc = ApiError("not_found", str(exc) or "not found", status_code=404)
    elif isinstance(exc, PermissionDenied):
        exc = ApiError("permission_denied", str(exc) or "permission denied", status_code=403)
    elif isinstance(exc, ValidationError):
        exc = ApiError("invalid", "; ".join(exc.messages), status_code=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        code, details = exc.error_code, exc.details
    elif isinstance(exc, exceptions.ValidationError):
        code, details = "invalid", exc.detail
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code, details = (codes if isinstance(codes, str) else "error"), None
    message = _flatten(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
    body = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    response.data = body
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404: JSON for API paths (an id that is not a number, a misspelt route), the page elsewhere."""
    if request.path.startswith("/api/v1/"):
        return JsonResponse({"error": {"code": "not_found", "message": f"no API route matches {request.path}"}},
                            status=404)
    return defaults.page_not_found(request, exception)
