"""REST API for evals: an adapter's eval card, runs with their per-item records, re-runs, leaderboards, stacks."""

from __future__ import annotations

from urllib.parse import quote

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.errors import ApiError
from hub.api.schema import api_error
from hub.catalog.models import RepoKind
from hub.catalog.selectors import base_model_get, repository_get_visible
from hub.core.params import ascii_int
from hub.evals.models import EvalRun
from hub.evals.selectors.cards import HistorySeries, adapter_eval_card, adapter_version_for_card, stack_eval_cards
from hub.evals.selectors.leaderboards import KINDS, SORTS, BoardSummary, Leaderboard, leaderboard, leaderboards_index
from hub.evals.selectors.runs import run_get_visible
from hub.evals.services import eval_run_rerun
from hub.stacks.selectors import stack_get, stack_withdrawn_reason
from workers.engine.evals import GENERAL_PERPLEXITY_ID


class ResultRowOut(serializers.Serializer):
    """The shape `nomoat evals` prints: one metric of one suite, beside the base model's."""

    suite = serializers.CharField()
    suite_version = serializers.CharField()
    metric = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    stderr = serializers.FloatField(allow_null=True)
    base_value = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField(allow_null=True)


class RunBriefOut(serializers.ModelSerializer):
    subject = serializers.CharField(source="subject_label")
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = EvalRun
        fields = ["id", "suite", "suite_version", "suite_kind", "state", "failure_reason", "subject", "subject_kind",
                  "runtime", "artifact_path", "subject_hash", "attempts", "created_at", "started_at", "finished_at",
                  "url", "page_url"]

    def get_url(self, obj: EvalRun) -> str:
        return reverse("api:eval-run", kwargs={"run_id": obj.pk})

    def get_page_url(self, obj: EvalRun) -> str:
        return reverse("eval-run-page", kwargs={"run_id": obj.pk})


class RunOut(RunBriefOut):
    """Everything needed to reproduce the result, and every item's record."""

    settings = serializers.JSONField(source="suite_settings")

    class Meta(RunBriefOut.Meta):
        fields = [*RunBriefOut.Meta.fields, "seed", "metrics", "settings", "suite_params", "suite_spec", "hashes",
                  "model", "library_versions", "seconds", "records"]


class HistoryPointOut(serializers.Serializer):
    version = serializers.IntegerField()
    value = serializers.FloatField()


class ScoreHistoryOut(serializers.Serializer):
    suite = serializers.CharField()
    metric = serializers.CharField()
    points = serializers.SerializerMethodField()
    base_value = serializers.FloatField(allow_null=True)

    @extend_schema_field(HistoryPointOut(many=True))
    def get_points(self, obj: HistorySeries) -> list[dict]:
        return [{"version": number, "value": value} for number, value in obj.points]


class ContaminationOut(serializers.Serializer):
    """The row's training data holds rows of the suite's eval set (hub/evals/contamination.py)."""

    suite = serializers.CharField()
    overlap = serializers.FloatField(help_text="share of the eval set's rows found in the training data")
    rows = serializers.IntegerField(help_text="eval rows found (by a normalised 13-gram or as a near duplicate)")
    eval_rows = serializers.IntegerField()
    training_dataset = serializers.CharField()
    member = serializers.CharField(help_text="for a stack: the member adapter whose training data it is")


class AdapterEvalsOut(serializers.Serializer):
    adapter = serializers.CharField()
    version = serializers.IntegerField()
    results = ResultRowOut(many=True)
    runs = RunBriefOut(many=True, help_text="the newest run of each suite on this adapter, in any state")
    base_runs = RunBriefOut(many=True)
    history = ScoreHistoryOut(many=True, help_text="each suite's primary metric across the adapter's versions")
    contamination = ContaminationOut(many=True, help_text="suites whose eval rows the adapter's training data holds")


class AdapterEvals(APIView):
    @extend_schema(parameters=[OpenApiParameter("version", {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
                                                description="default: the latest published")],
                   responses=AdapterEvalsOut)
    def get(self, request: Request, owner: str, name: str) -> Response:
        repo = repository_get_visible(request.user, RepoKind.ADAPTER, owner, name)
        number = request.query_params.get("version")
        if number is not None and ascii_int(number) is None:
            raise ApiError("invalid", "version must be a number")
        version = adapter_version_for_card(request.user, repo, None if number is None else ascii_int(number))
        card = adapter_eval_card(request.user, version)
        return Response(AdapterEvalsOut({"adapter": repo.full_name, "version": version.number, "results": card.rows,
                                         "runs": card.runs, "base_runs": card.base_runs,
                                         "history": card.history, "contamination": card.contamination}).data)


class RunDetail(APIView):
    @extend_schema(responses=RunOut)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunOut(run_get_visible(request.user, run_id)).data)


class RunRerun(APIView):
    """Moderators only: run it again from scratch (202; the worker picks it up)."""

    @extend_schema(request=None, responses={202: RunBriefOut, 409: api_error("the run is being worked on now")})
    def post(self, request: Request, run_id: int) -> Response:
        run = run_get_visible(request.user, run_id)
        run = eval_run_rerun(run=run, moderator=request.user)
        return Response(RunBriefOut(run).data, status=202)


class StackingPartOut(serializers.Serializer):
    adapter = serializers.CharField()
    suite = serializers.CharField()
    metric = serializers.CharField()
    base = serializers.FloatField()
    alone = serializers.FloatField()
    stacked = serializers.FloatField()
    score = serializers.FloatField(allow_null=True)


class StackingOut(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    min = serializers.FloatField(allow_null=True)
    adapters = StackingPartOut(source="parts", many=True)


class LeaderboardEntryOut(serializers.Serializer):
    kind = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField()
    runtime = serializers.CharField(source="subject.runtime")
    artifact = serializers.CharField(source="subject.artifact_path")
    value = serializers.FloatField(allow_null=True)
    stderr = serializers.FloatField(allow_null=True)
    base_value = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    retention = serializers.FloatField(allow_null=True)
    size = serializers.IntegerField()
    bits_per_weight = serializers.FloatField(allow_null=True)
    downloads = serializers.IntegerField(allow_null=True)
    date = serializers.DateTimeField(allow_null=True)
    stacking = StackingOut(allow_null=True)
    contamination = ContaminationOut(allow_null=True)
    run = RunBriefOut()


class LeaderboardOut(serializers.Serializer):
    base_model = serializers.CharField(source="base_model.name")
    suite = serializers.CharField()
    suite_version = serializers.CharField()
    suite_versions = serializers.ListField(child=serializers.CharField())
    metric = serializers.CharField()
    metrics = serializers.ListField(child=serializers.CharField())
    higher_is_better = serializers.BooleanField()
    results = LeaderboardEntryOut(source="entries", many=True)
    contamination_threshold = serializers.FloatField(help_text="rows whose contamination overlap is above this are "
                                                                "hidden unless contaminated=show")
    hidden_contaminated = serializers.IntegerField()


class BoardSummaryOut(serializers.Serializer):
    base_model = serializers.CharField()
    suite = serializers.CharField()
    suite_kind = serializers.CharField()
    subjects = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_url(self, obj: BoardSummary) -> str:
        return f"{reverse('api:leaderboard', kwargs={'owner': obj.owner, 'name': obj.name})}?suite={quote(obj.suite)}"


LEADERBOARD_PARAMS = [
    OpenApiParameter("suite", str, description="general-perplexity (default) or task:owner/dataset[:split]"),
    OpenApiParameter("suite_version", str, description="default: the newest"),
    OpenApiParameter("metric", str, description="default: the suite's primary metric"),
    OpenApiParameter("kind", str, description=" | ".join(KINDS)),
    OpenApiParameter("q", str, description="name contains"),
    OpenApiParameter("sort", str, description=" | ".join(SORTS)),
    OpenApiParameter("order", str, description="asc | desc (default: better first for scores)"),
    OpenApiParameter("contaminated", str, enum=["", "show"],
                     description="show: also rows whose training data holds more of the eval set than the threshold"),
]


def leaderboard_from(request, owner: str, name: str) -> Leaderboard:
    """The leaderboard a request asks for (shared by the API and the page)."""
    params = request.GET
    return leaderboard(
        base_model_get(f"{owner}/{name}"), params.get("suite") or GENERAL_PERPLEXITY_ID,
        suite_version=params.get("suite_version", ""), metric=params.get("metric", ""), kind=params.get("kind", ""),
        search=params.get("q", ""), sort=params.get("sort", "score"), order=params.get("order", ""),
        show_contaminated=params.get("contaminated") == "show",
    )


class LeaderboardIndexOut(serializers.Serializer):
    results = BoardSummaryOut(many=True, help_text="every leaderboard: one per base model and suite")


class LeaderboardList(APIView):
    @extend_schema(responses=LeaderboardIndexOut, operation_id="leaderboards_list")
    def get(self, request: Request) -> Response:
        return Response(LeaderboardIndexOut({"results": leaderboards_index()}).data)


class LeaderboardDetail(APIView):
    @extend_schema(parameters=LEADERBOARD_PARAMS, responses=LeaderboardOut)
    def get(self, request: Request, owner: str, name: str) -> Response:
        return Response(LeaderboardOut(leaderboard_from(request._request, owner, name)).data)


class StackArtifactOut(serializers.Serializer):
    artifact = serializers.CharField(source="subject.artifact_path", help_text="the GGUF file; empty for transformers")
    runtime = serializers.CharField(source="subject.runtime")
    results = ResultRowOut(source="rows", many=True)
    runs = RunBriefOut(many=True)


class StackEvalsOut(serializers.Serializer):
    recipe_hash = serializers.CharField()
    stacking = StackingOut(allow_null=True)
    artifacts = StackArtifactOut(many=True)


class StackEvals(APIView):
    @extend_schema(responses=StackEvalsOut)
    def get(self, request: Request, recipe_hash: str) -> Response:
        build = stack_get(recipe_hash)
        if stack_withdrawn_reason(build) and not getattr(request.user, "is_moderator", False):
            raise ApiError("withdrawn", stack_withdrawn_reason(build), status_code=404)
        cards = stack_eval_cards(build)
        return Response(StackEvalsOut({"recipe_hash": build.recipe_hash, "artifacts": cards,
                                       "stacking": cards[0].stacking if cards else None}).data)
