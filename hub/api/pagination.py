"""Cursor pagination on the whole ordering (keyset pagination).

DRF's CursorPagination keeps only the first ordering field's value in a cursor, plus an offset into the rows that
share it: many ties (thousands of adapters never downloaded) make a deep page an OFFSET over all of them, and a row
added inside the tied run shifts every later page by one (a row seen twice, another never). Here a cursor holds the
value of every ordering field of the row it stops at, and the next page is the rows strictly after that tuple: a
page costs the same however deep it is (the database seeks in the index of the ordering), and rows added or
removed elsewhere never move the rows not yet seen. The ordering always ends with the primary key, so positions are
unique. NULLs sort last in either direction of a field, on every database.
"""

from __future__ import annotations

import datetime
import decimal
import json
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model, Q, QuerySet
from django.db.models.expressions import OrderBy
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

from hub.api.errors import ApiError


@dataclass(frozen=True)
class Key:
    field: str
    descending: bool
    nullable: bool

    def order(self, reverse: bool) -> OrderBy:
        """Plain ASC/DESC for a column that cannot be NULL (so the database walks an index of it); NULLs last."""
        descending = self.descending != reverse
        nulls = ({"nulls_first": True} if reverse else {"nulls_last": True}) if self.nullable else {}
        return F(self.field).desc(**nulls) if descending else F(self.field).asc(**nulls)


def ordering_keys(model: type[Model], ordering: tuple[str, ...] | list[str]) -> list[Key]:
    """Keys of `ordering` ("-created_at", "name", …), ending with the primary key so that positions are unique."""
    keys = []
    for name in ordering:
        field = name.lstrip("-")
        try:
            nullable = model._meta.get_field(field).null if field != "pk" else False
        except FieldDoesNotExist:  # an annotation (a search rank): it may be NULL as far as we know
            nullable = True
        keys.append(Key(field, name.startswith("-"), nullable))
    if not any(key.field in ("pk", model._meta.pk.name) for key in keys):
        keys.append(Key("pk", keys[0].descending if keys else False, False))
    return keys


def rows_beyond(keys: list[Key], values: list, reverse: bool = False) -> Q:
    """Rows strictly after the position `values` in the order of `keys` (before it when `reverse`)."""
    key, value, rest = keys[0], values[0], keys[1:]
    tail = rows_beyond(rest, values[1:], reverse) if rest else None
    if value is None:  # NULLs are last: after a NULL only NULLs (with a later rest), before it every value
        beyond = Q(**{f"{key.field}__isnull": True}) & tail if tail is not None else Q(pk__in=[])
        return beyond | Q(**{f"{key.field}__isnull": False}) if reverse else beyond
    later = "lt" if key.descending != reverse else "gt"
    beyond = Q(**{f"{key.field}__{later}": value})
    nulls_after = key.nullable and not reverse
    if nulls_after:
        beyond |= Q(**{f"{key.field}__isnull": True})
    if tail is None:
        return beyond
    beyond |= Q(**{key.field: value}) & tail
    # Implied by the above, but stated: a bound on the leading field is what lets the database seek in its index.
    return beyond if nulls_after else Q(**{f"{key.field}__{later}e": value}) & beyond


def _position_value(instance: Model, field: str):
    value = instance.pk if field == "pk" else getattr(instance, field)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


class HubCursorPagination(CursorPagination):
    """Keyset pages, stable under concurrent inserts; views choose the ordering, `page_size` caps at 100."""

    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-created_at"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", None)
        if ordering:
            return ordering(request) if callable(ordering) else ordering
        return super().get_ordering(request, queryset, view)

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list:
        self.request = request
        self.page_size = self.get_page_size(request)
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.keys = ordering_keys(queryset.model, self.ordering)
        self.cursor = self.decode_cursor(request)
        reverse = bool(self.cursor and self.cursor.reverse)
        queryset = queryset.order_by(*(key.order(reverse) for key in self.keys))
        if self.cursor is not None:
            queryset = queryset.filter(rows_beyond(self.keys, self._position_values(self.cursor.position), reverse))
        rows = list(queryset[:self.page_size + 1])
        more = len(rows) > self.page_size
        self.page = rows[:self.page_size][::-1] if reverse else rows[:self.page_size]
        # A cursor came from a neighbouring page, so that side has rows; the far side has them when one more came.
        self.has_next, self.has_previous = (True, more) if reverse else (more, self.cursor is not None)
        return self.page

    def _position_values(self, position: str | None) -> list:
        try:
            values = json.loads(position or "")
        except ValueError:
            values = None
        if not isinstance(values, list) or len(values) != len(self.keys):
            raise NotFound(f"{self.invalid_cursor_message}: it is not one this list made for its ordering "
                           f"({', '.join(self.ordering)}); follow the `next` and `previous` links")
        return values

    def _position(self, instance: Model) -> str:
        return json.dumps([_position_value(instance, key.field) for key in self.keys])

    def get_next_link(self) -> str | None:
        if not (self.has_next and self.page):
            return None
        return self.encode_cursor(Cursor(offset=0, reverse=False, position=self._position(self.page[-1])))

    def get_previous_link(self) -> str | None:
        if not (self.has_previous and self.page):
            return None
        return self.encode_cursor(Cursor(offset=0, reverse=True, position=self._position(self.page[0])))

    def get_page_size(self, request) -> int:
        """A page size that is not a positive number is refused (DRF would silently use the default instead)."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        digits = raw.lstrip("0")
        if not (raw.isascii() and raw.isdigit() and digits):
            raise ApiError("invalid", f"{self.page_size_query_param} must be a whole number from 1 (pages hold at "
                                      f"most {self.max_page_size})")
        # Any larger number asks for a full page; int() of thousands of digits would be an error.
        return min(int(digits[:len(str(self.max_page_size)) + 1]), self.max_page_size)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = f"results per page (at most {self.max_page_size} are returned)"
        return parameters
