"""ReDoc's bundle as the hub serves it: drf-spectacular-sidecar's file with its one outside URL made local.

The bundle always renders a "Redocly" logo from https://cdn.redoc.ly; the docs must load nothing from another host
(they work offline), so the hub serves the same file with that URL pointing at its own icon.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import drf_spectacular_sidecar
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.views.decorators.http import require_GET

BUNDLE = Path(drf_spectacular_sidecar.__file__).parent / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
OUTSIDE_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@cache
def _bundle(logo: str) -> bytes:
    return BUNDLE.read_text(encoding="utf-8").replace(OUTSIDE_LOGO, logo).encode()


@require_GET
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_bundle(static("favicon.svg")), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
