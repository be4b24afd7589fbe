"""REST API for stacks: request a build (shared per recipe hash), follow it, download its files."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.errors import ApiError
from hub.api.schema import api_error, download_schema
from hub.stacks import selectors
from hub.stacks.downloads import serve_stack_file
from hub.stacks.models import BuildState, StackBuild
from hub.stacks.services import stack_request


class StackRecipeIn(serializers.Serializer):
    base_model = serializers.CharField(help_text="e.g. HuggingFaceTB/SmolLM2-135M-Instruct")
    adapters = serializers.ListField(child=serializers.JSONField(),
                                     help_text='[{"adapter": "owner/name[@version]", "weight": 1.0}, …]')
    method = serializers.JSONField(required=False, help_text='"linear" or {"name": "ties", "params": {"density": 0.5}}')
    output = serializers.JSONField(required=False, help_text='"merged" or {"type": "merged", "dtype": "bf16"}')


class StackMemberOut(serializers.Serializer):
    adapter = serializers.CharField(help_text="owner/name")
    version = serializers.IntegerField()
    weight = serializers.FloatField()


class StackFileOut(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.CharField()


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

    @extend_schema_field(StackFileOut(many=True))
    def get_files(self, obj: StackBuild) -> list[dict]:
        return [{"path": f.path, "size": f.blob.size, "sha256": f.blob.sha256,
                 "url": reverse("api:stack-file", kwargs={"recipe_hash": obj.recipe_hash, "path": f.path})}
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


class StackListCreate(generics.ListAPIView):
    serializer_class = StackOut
    cursor_ordering = ("-downloads", "-pk")

    def get_queryset(self):
        params = self.request.query_params
        return selectors.stacks_listed(base_model=params.get("base_model", ""), adapter=params.get("adapter", ""))

    @extend_schema(parameters=[OpenApiParameter("base_model", str), OpenApiParameter("adapter", str,
                                                                                    description="owner/name")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=StackRecipeIn, responses={200: StackOut, 202: StackOut})
    def post(self, request: Request) -> Response:
        build, _ = stack_request(user=request.user, request=request.data)
        build = selectors.stack_get(build.recipe_hash)
        return Response(StackOut(build).data, status=200 if build.state == BuildState.READY else 202)


class StackDetail(APIView):
    @extend_schema(responses=StackOut)
    def get(self, request: Request, recipe_hash: str) -> Response:
        try:
            build = selectors.stack_get_visible(request.user, recipe_hash)
        except selectors.StackWithdrawn as exc:
            raise ApiError("withdrawn", str(exc), status_code=404) from None
        return Response(StackOut(build).data)


class StackFileDownload(APIView):
    @download_schema({409: api_error("the stack is not built yet (`not_ready`)")})
    def get(self, request: Request, recipe_hash: str, path: str):
        build = selectors.stack_get(recipe_hash)
        return serve_stack_file(request._request, build, path)


