from rest_framework.pagination import CursorPagination


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
