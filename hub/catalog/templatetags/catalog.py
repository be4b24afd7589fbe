"""Catalog reads for pages of apps below the catalog (accounts' profile page lists your repositories)."""

from __future__ import annotations

from django import template
from django.db.models import QuerySet

from hub.catalog.models import Repository

register = template.Library()


@register.simple_tag
def repositories_owned_by(user) -> QuerySet[Repository]:
    """Every repository of `user`, published or not (the profile page is seen by its owner only)."""
    return Repository.objects.filter(owner=user).select_related("owner").order_by("kind", "name")
