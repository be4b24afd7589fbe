"""List filters with django-filter: each list declares its parameters once, as a FilterSet, and they are
validated and documented in the OpenAPI schema from that declaration. What a filter *means* stays in the
app's selector: a FilterSet here hands the cleaned values to it (`SelectorFilterSet.select`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters

from hub.api.errors import ApiError


class HubFilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend, refusing a bad parameter in the API's error shape: `invalid_filter`, naming it."""

    def filter_queryset(self, request, queryset: QuerySet, view) -> QuerySet:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            name, errors = next(iter(filterset.errors.items()))
            raise ApiError("invalid_filter", f"{name}: {' '.join(errors)}", details={"field": name})
        return filterset.qs


class SelectorFilterSet(filters.FilterSet):
    """Declares and validates a list's parameters; `select(queryset, values)` runs the app's selector with them
    (every declared parameter present, "" when absent), so the pages and the API share one rule."""

    def select(self, queryset: QuerySet, values: dict[str, Any]) -> QuerySet:
        raise NotImplementedError

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        values = {name: self.form.cleaned_data.get(name) or "" for name in self.filters}
        return self.select(queryset, values)
