"""The JSON-LD context our version objects name (hub.federation.objects)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from hub.federation.objects import context_document


def context(request: HttpRequest) -> JsonResponse:
    return JsonResponse(context_document(), content_type="application/ld+json")
