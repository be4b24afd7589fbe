"""The part of the Hub's HTTP API that huggingface_hub reads repositories with: list, info, tree and resolve.

Thin DRF views over `hub.hfcompat.selectors`; authentication is the hub's own (`Authorization: Bearer nmt_...`,
which is what the client sends for `token=`), errors are the Hub's (`hub.hfcompat.errors`).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.pagination import HubCursorPagination
from hub.hfcompat import selectors
from hub.hfcompat.errors import exception_handler
from hub.hfcompat.serializers import CommitOut, PathsInfoIn, RepoListIn, TreeIn, info_out, refs_out, tree_out


class LinkHeaderPagination(HubCursorPagination):
    """The Hub's paging: a page is a bare JSON list, the next one a `Link: <url>; rel="next"` header."""

    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 1000

    def get_paginated_response(self, data: list) -> Response:
        next_link = self.get_next_link()
        return Response(data, headers={"Link": f'<{next_link}>; rel="next"'} if next_link else None)


class HubView(APIView):
    """JSON only, and the Hub's error format instead of the hub API's."""

    renderer_classes = [JSONRenderer]

    def get_exception_handler(self) -> Callable[[Exception, dict], Response | None]:
        return exception_handler

    def resolve(self, request: Request, repo_type: str, namespace: str, name: str,
                revision: str) -> selectors.Revision:
        return selectors.revision_resolve(user=request.user, repo_type=repo_type, namespace=namespace, name=name,
                                          revision=revision)


class RepoList(HubView):
    """GET /api/models, /api/datasets: `list_models` / `list_datasets` (search, author, filter, sort, limit)."""

    def get(self, request: Request, repo_type: str) -> Response:
        query = RepoListIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        field = selectors.SORTS[params["sort"]]
        self.cursor_ordering = (f"-{field}", "-pk") if params["direction"] == -1 else (field, "pk")
        repos = selectors.catalog_repositories(user=request.user, repo_type=repo_type,
                                               search=" ".join(params["search"]), author=params["author"],
                                               tags=params["filter"], task=params["pipeline_tag"])
        paginator = LinkHeaderPagination()
        page = paginator.paginate_queryset(repos, request, view=self)
        return paginator.get_paginated_response(info_out([selectors.catalog_main_revision(r) for r in page]))


class RepoInfo(HubView):
    """GET /api/{models,datasets}/<id>[/revision/<rev>]: `model_info`, `dataset_info`, `repo_info`."""

    def get(self, request: Request, repo_type: str, namespace: str, name: str,
            revision: str = selectors.MAIN) -> Response:
        [info] = info_out([self.resolve(request, repo_type, namespace, name, revision)])
        return Response(info)


class RepoTree(HubView):
    """GET /api/{models,datasets}/<id>/tree/<rev>[/<path>]: `list_repo_tree`, `list_repo_files`."""

    def get(self, request: Request, repo_type: str, namespace: str, name: str, revision: str,
            path: str = "") -> Response:
        query = TreeIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = self.resolve(request, repo_type, namespace, name, revision)
        entries = selectors.tree_entries(found, path=path.strip("/"), recursive=query.validated_data["recursive"])
        return Response(tree_out(entries, selectors.last_commits(found) if query.validated_data["expand"] else None))


class PathsInfo(HubView):
    """POST /api/{models,datasets}/<id>/paths-info/<rev> (form: `paths`, `expand`): `get_paths_info`, and
    `HfFileSystem.info`."""

    permission_classes = []  # a read sent as a POST: who may see what is the resolver's business

    def post(self, request: Request, repo_type: str, namespace: str, name: str, revision: str) -> Response:
        data = request.data
        query = PathsInfoIn(data={"paths": data.getlist("paths") if hasattr(data, "getlist") else data.get("paths"),
                                  "expand": data.get("expand", False)})
        query.is_valid(raise_exception=True)
        found = self.resolve(request, repo_type, namespace, name, revision)
        entries = selectors.paths_info(found, query.validated_data["paths"])
        return Response(tree_out(entries, selectors.last_commits(found) if query.validated_data["expand"] else None))


class RepoCommits(HubView):
    """GET /api/{models,datasets}/<id>/commits/<rev>: `list_repo_commits`, newest first (one per version)."""

    def get(self, request: Request, repo_type: str, namespace: str, name: str, revision: str) -> Response:
        found = self.resolve(request, repo_type, namespace, name, revision)
        return Response(CommitOut(found.history, many=True).data)


class RepoRefs(HubView):
    """GET /api/{models,datasets}/<id>/refs: `list_repo_refs`."""

    def get(self, request: Request, repo_type: str, namespace: str, name: str) -> Response:
        return Response(refs_out(self.resolve(request, repo_type, namespace, name, selectors.MAIN)))


class ResolveFile(HubView):
    """GET/HEAD [/datasets]/<id>/resolve/<rev>/<path>: `hf_hub_download`, `get_hf_file_metadata`, `file_exists`.

    The client takes the commit from `X-Repo-Commit`, the ETag from `X-Linked-Etag` and the size from
    `X-Linked-Size` (which stay right when the body is a redirect to a presigned URL, or a HEAD).
    """

    def get(self, request: Request, repo_type: str, namespace: str, name: str, revision: str,
            path: str) -> HttpResponse:
        found = self.resolve(request, repo_type, namespace, name, revision)
        file = found.file(path)
        response = found.serve(request._request, file)
        response["X-Repo-Commit"] = found.sha
        response["X-Linked-Etag"] = f'"{file.sha256}"'
        response["X-Linked-Size"] = str(file.size)
        return response
