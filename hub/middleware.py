"""A client's mistake answers a 4xx, never a 500.

A NUL character in the path, the query string or a form post is refused before any view runs: PostgreSQL text
cannot hold one, so every filter on it fails (and a streamed response fails mid-body, after its 200). The hub's
known refusals (ApiError, the services' errors, an oversized body) raised where no handler turns them into a
response, as in a page calling a helper it shares with the API, answer with their own status: JSON in the error
format of the API view that raised them, an error page otherwise. An outage (the database or the blob store cannot
be reached: hub/core/outages.py) answers 503 with Retry-After, its page rendered without touching the database, also
when it is raised outside any view: Django turns an exception of any middleware (a session saved in
SessionMiddleware's process_response) into the answer of `handler500`, which is `server_error` here.

`ContentETagMiddleware` gives every non-streamed GET answer a weak ETag of its body, which Django's
ConditionalGetMiddleware (just outside it) compares with If-None-Match to answer 304.
"""

from __future__ import annotations

import hashlib
import http
import sys
from collections.abc import Callable
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import get_template
from django.urls import Resolver404, resolve
from django.utils.cache import cc_delim_re, patch_vary_headers
from django.views import defaults
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from hub.api.errors import ApiError, as_api_error, page_not_found
from hub.api.errors import exception_handler as api_exception_handler
from hub.core.errors import ServiceError
from hub.core.outages import outage_of


class ClientErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            refused = _contains_nul(request)
        except SuspiciousOperation as exc:  # a form body over the limits
            response = self.process_exception(request, exc)
            if response is None:
                raise
            return response
        if refused:
            return error_response(request, ApiError("nul_character", "the address and form fields must not contain "
                                                                     "NUL characters (%00)"))
        response = self.get_response(request)
        if response.status_code == 404 and settings.DEBUG and getattr(request, "resolver_match", None) is None \
                and not request.path.startswith(("/api/", "/" + settings.STATIC_URL.lstrip("/"))):
            # No route matched: with DEBUG on Django would answer its technical page; people get the site's.
            return page_not_found(request, Http404(f"There is nothing at {request.path}."))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404) and _api_view(request) is None and not request.path.startswith("/api/"):
            return page_not_found(request, exception)  # the site's 404 page, whether DEBUG is on or off
        error = known_error(exception)
        if error is None and isinstance(exception, SuspiciousOperation) and _api_view(request):
            error = _refused_body(exception)  # Django's own answer is an HTML page
        return None if error is None else error_response(request, error)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500, called while the exception is handled: an outage's 503, else Django's own 500 page."""
    error = sys.exc_info()[1]
    outage = None if error is None else outage_of(error)
    return defaults.server_error(request) if outage is None else error_response(request, as_api_error(outage))


def _contains_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path or "\x00" in unquote(request.META.get("QUERY_STRING", "")):
        return True
    # Form posts too (pages' CSRF check reads them anyway), except an API's multipart body: it streams on to the view
    # (uploads), whose serializer fields refuse NUL themselves.
    if request.method != "POST" or (request.content_type == "multipart/form-data" and _api_view(request)):
        return False
    return any("\x00" in key or "\x00" in "".join(values) for key, values in request.POST.lists())


def known_error(exc: Exception) -> ApiError | None:
    """One of the hub's own refusals, as the ApiError the API answers it with (None for anything else)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ServiceError):
        return as_api_error(exc)
    outage = outage_of(exc)
    return None if outage is None else as_api_error(outage)


def _refused_body(exc: SuspiciousOperation) -> ApiError:
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return ApiError("too_large", f"the request body is over {limit} bytes; upload large files in chunks "
                                     "with /api/v1/uploads", status_code=413)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return ApiError("too_many_fields", str(exc))
    return ApiError("bad_request", "the request was refused")


def _api_view(request: HttpRequest) -> type[APIView] | None:
    """The DRF view class the request's path leads to, if any."""
    try:
        match = getattr(request, "resolver_match", None) or resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    view_class = getattr(match.func, "view_class", None)  # as_view() keeps the class there
    return view_class if isinstance(view_class, type) and issubclass(view_class, APIView) else None


def error_response(request: HttpRequest, error: ApiError) -> HttpResponse:
    """JSON in the error format of the API view at this path (the HF-compatible ones have their own), or a page."""
    view_class = _api_view(request)
    if view_class is None and not request.path.startswith("/api/"):
        status = error.status_code
        context = {"status": status, "title": http.HTTPStatus(status).phrase, "exception": str(error.detail)}
        if status == 503:
            # Without the request's context processors: the signed-in user and their notifications are read from
            # the database, which may be what is down.
            page = HttpResponse(get_template("error.html").render(context), status=status)
        else:
            page = render(request, "404.html" if status == 404 else "error.html", context, status=status)
        if getattr(error, "wait", None):
            page["Retry-After"] = str(error.wait)
        return page
    handler = view_class().get_exception_handler() if view_class else api_exception_handler
    response = handler(error, {"request": request, "view": None, "args": (), "kwargs": {}})
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = JSONRenderer.media_type
    response.renderer_context = {}
    return response.render()


class ContentETagMiddleware:
    """A weak ETag from the body's digest (weak: a proxy that compresses the body keeps it valid), and Vary on
    what decides the body besides the URL: the caller's token or session (an owner sees drafts) and Accept."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method != "GET" or response.streaming or response.has_header("ETag") or any(
                part.lower() == "no-store" for part in cc_delim_re.split(response.get("Cache-Control", ""))):
            return response
        digest = hashlib.blake2b(response.content, digest_size=16).hexdigest()
        response["ETag"] = f'W/"{digest}"'
        patch_vary_headers(response, ("Authorization", "Cookie"))
        return response
