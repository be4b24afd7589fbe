from rest_framework.pagination import CursorPagination

from hub.api.errors import ApiError


class HubCursorPagination(CursorPagination):
    """Stable pages under concurrent inserts; views choose the ordering, `page_size` caps at 100."""

    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-created_at"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", None)
        if ordering:
            return ordering(request) if callable(ordering) else ordering
        return super().get_ordering(request, queryset, view)

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
