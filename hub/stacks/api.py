"""REST API for stacks: request a build (shared per recipe hash), follow it, download its files."""

from __future__ import annotations

import yaml
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.errors import ApiError
from hub.api.filters import HubFilterBackend, SelectorFilterSet
from hub.api.parsers import JSONParser, check_parsed
from hub.api.schema import api_error, download_schema
from hub.catalog.api import FileOut, file_entry
from hub.stacks import selectors
from hub.stacks.downloads import serve_stack_file
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import stack_request
from workers.engine.recipe_schema import StackRecipeBody


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a recipe needs none, and aliases nested in aliases expand exponentially."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted", self.peek_event().start_mark)
        return super().compose_node(parent, index)


class YAMLParser(BaseParser):
    """A recipe or a mergekit config as YAML (`Content-Type: application/yaml`), read with the safe loader."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # the limit Django applies to a body it reads itself
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        try:
            data = yaml.load(body.decode("utf-8"), Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
        except UnicodeDecodeError:
            raise ParseError("YAML parse error - the body is not UTF-8") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ParseError(f"YAML parse error{where} - {getattr(exc, 'problem', None) or exc}") from None
        check_parsed(data)
        return data


class StackMemberOut(serializers.Serializer):
    adapter = serializers.CharField(help_text="owner/name")
    version = serializers.IntegerField()
    weight = serializers.FloatField()


class StackTimingsOut(serializers.Serializer):
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    build_seconds = serializers.FloatField(allow_null=True)


class StackOut(serializers.ModelSerializer):
    base_model = serializers.SlugRelatedField(read_only=True, slug_field="name")
    progress_percent = serializers.SerializerMethodField()
    adapters = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()
    timings = serializers.SerializerMethodField()
    withdrawn_reason = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = StackBuild
        fields = ["recipe_hash", "state", "progress_percent", "progress_message", "failure_reason", "withdrawn_reason",
                  "base_model", "method", "output", "adapters", "recipe", "request", "manifest", "files", "timings",
                  "downloads", "request_count", "attempts", "url", "page_url"]

    def get_progress_percent(self, obj: StackBuild) -> float:
        return round(obj.progress * 100, 1)

    @extend_schema_field(StackMemberOut(many=True))
    def get_adapters(self, obj: StackBuild) -> list[dict]:
        return [{"adapter": m.version.repository.full_name, "version": m.version.number, "weight": m.weight}
                for m in obj.members.all()]

    @extend_schema_field(FileOut(many=True))
    def get_files(self, obj: StackBuild) -> list[dict]:
        return [file_entry(f.path, f.blob, self.context.get("request"),
                           reverse("api:stack-file", kwargs={"recipe_hash": obj.recipe_hash, "path": f.path}))
                for f in obj.files.all()]

    @extend_schema_field(StackTimingsOut)
    def get_timings(self, obj: StackBuild) -> dict:
        return {"created_at": obj.created_at, "started_at": obj.started_at, "finished_at": obj.finished_at,
                "build_seconds": obj.seconds}

    def get_withdrawn_reason(self, obj: StackBuild) -> str:
        return selectors.stack_withdrawn_reason(obj)

    def get_url(self, obj: StackBuild) -> str:
        return reverse("api:stack-detail", kwargs={"recipe_hash": obj.recipe_hash})

    def get_page_url(self, obj: StackBuild) -> str:
        return reverse("stack-page", kwargs={"recipe_hash": obj.recipe_hash})


class StackFilterSet(SelectorFilterSet):
    """The stack list's parameters; `selectors.stacks_listed` applies them."""

    base_model = filters.CharFilter(help_text="base model name")
    adapter = filters.CharFilter(help_text="owner/name: stacks with this adapter")

    def select(self, queryset, values):
        return selectors.stacks_listed(**values)


class StackListCreate(generics.ListAPIView):
    serializer_class = StackOut
    cursor_ordering = ("-downloads", "-pk")
    filter_backends = [HubFilterBackend]
    filterset_class = StackFilterSet
    queryset = StackBuild.objects.none()  # the FilterSet's selector builds the list (the schema reads the model)

    parser_classes = [JSONParser, YAMLParser]

    @extend_schema(request={"application/json": StackRecipeBody, "application/yaml": StackRecipeBody},
                   responses={200: StackOut, 202: StackOut})
    def post(self, request: Request) -> Response:
        build, _ = stack_request(user=request.user, request=request.data)
        build = selectors.stack_get(build.recipe_hash)
        return Response(StackOut(build, context={"request": request}).data, status=200 if build.state == BuildState.READY else 202)


class StackDetail(APIView):
    @extend_schema(responses=StackOut)
    def get(self, request: Request, recipe_hash: str) -> Response:
        try:
            build = selectors.stack_get_visible(request.user, recipe_hash)
        except selectors.StackWithdrawn as exc:
            raise ApiError("withdrawn", str(exc), status_code=404) from None
        return Response(StackOut(build, context={"request": request}).data)


class StackFileDownload(APIView):
    @download_schema({409: api_error("the stack is not built yet (`not_ready`)")})
    def get(self, request: Request, recipe_hash: str, path: str):
        build = selectors.stack_get(recipe_hash)
        return serve_stack_file(request._request, build, path)


