"""REST API v1 for moderation: the queue and its decisions, reports, takedowns and the audit log.

Moderation endpoints answer 401 to anonymous clients and 403 to signed-in users without the
permission, like the pages; a refused request is JSON with a stable code (ModerationError's).
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.accounts.auth import TokenScopePermission
from hub.api.errors import ApiError
from hub.api.fields import RequiredText, TextField
from hub.api.schema import api_error
from hub.audit import selectors as audit_selectors
from hub.audit.models import AuditEntry
from hub.catalog.api import FileOut
from hub.catalog.diffs import TextDiff, VersionDiff
from hub.core.params import ascii_int
from hub.moderation import selectors
from hub.moderation.models import (
    RejectReason,
    Report,
    ReportReason,
    ReportStatus,
    Resolution,
    ReviewItem,
    Takedown,
)
from hub.moderation.services.reports import report_create, reports_resolve
from hub.moderation.services.review import (
    BULK_DECISIONS,
    review_item_claim,
    review_item_decide,
    review_item_release,
    review_items_decide_bulk,
)
from hub.moderation.services.takedowns import takedown_lift
from hub.moderation.targets import TARGET_TYPES, target_type

REVIEW = "moderation.review_version"
RESOLVE = "moderation.resolve_report"
AUDIT = "audit.view_auditentry"


class ModeratorPermission(permissions.BasePermission):
    """Signed-in users holding the view's `required_perm` (a Django permission their role's group grants)."""

    message = "moderators only"
    code = "permission_denied"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.has_perm(view.required_perm))


class ModerationApi:
    """Base for moderation views: the permission check (refusals are answered by the API's exception handler)."""

    required_perm = REVIEW
    permission_classes = [TokenScopePermission, ModeratorPermission]


# --- serializers -----------------------------------------------------------------------------------------


class TargetOut(serializers.Serializer):
    kind = serializers.CharField(source="target_kind")
    id = serializers.IntegerField(source="target_id")
    label = serializers.CharField(source="target_label")


class ReviewItemOut(serializers.ModelSerializer):
    kind = serializers.CharField(source="version.repository.kind")
    repository = serializers.CharField(source="version.repository.full_name")
    version = serializers.IntegerField(source="version.number")
    version_id = serializers.IntegerField()
    state = serializers.CharField(source="version.state")
    base_model = serializers.SlugRelatedField(source="version.base_model", slug_field="name", read_only=True,
                                              allow_null=True)
    uploader = serializers.CharField(source="version.created_by.username")
    uploaded_at = serializers.DateTimeField(source="version.created_at")
    flags = serializers.ListField(child=serializers.CharField())
    claimed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    claim_expires_at = serializers.DateTimeField(source="lease_expires_at", allow_null=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    replaces = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = ReviewItem
        fields = ["id", "kind", "repository", "version", "version_id", "state", "base_model", "uploader",
                  "uploaded_at", "queued_at", "flags", "sampled", "replaces", "claimed_by", "claim_expires_at",
                  "status", "decided_by", "decided_at", "reason_code", "note"]


class PreviousVersionOut(serializers.Serializer):
    number = serializers.IntegerField()
    state = serializers.CharField()


class TextDiffOut(serializers.Serializer):
    path = serializers.CharField()
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    lines = serializers.SerializerMethodField(help_text='unified-diff style: "+added", "-removed", " same", "@@ fold"')

    def get_lines(self, obj: TextDiff) -> list[str]:
        signs = {"added": "+", "removed": "-", "same": " ", "hunk": "@@ "}
        return [signs[line.kind] + line.text for line in obj.lines]


class DiffOut(serializers.Serializer):
    previous = serializers.SerializerMethodField()
    files_added = serializers.SerializerMethodField()
    files_removed = serializers.SerializerMethodField()
    files_changed = serializers.SerializerMethodField()
    texts = serializers.SerializerMethodField(help_text="the card first, then each changed text file")

    @extend_schema_field(PreviousVersionOut())
    def get_previous(self, obj: VersionDiff) -> dict:
        return {"number": obj.older.number, "state": obj.older.state}

    def _paths(self, obj: VersionDiff, status: str) -> list[str]:
        return [change.path for change in obj.files if change.status == status]

    def get_files_added(self, obj: VersionDiff) -> list[str]:
        return self._paths(obj, "added")

    def get_files_removed(self, obj: VersionDiff) -> list[str]:
        return self._paths(obj, "removed")

    def get_files_changed(self, obj: VersionDiff) -> list[str]:
        return self._paths(obj, "changed")

    @extend_schema_field(TextDiffOut(many=True))
    def get_texts(self, obj: VersionDiff) -> list[dict]:
        return TextDiffOut([obj.card, *obj.texts], many=True).data


class DecisionOut(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.CharField()
    decided_at = serializers.DateTimeField()
    reason = serializers.CharField()


class HistoryOut(serializers.Serializer):
    uploader = serializers.CharField(source="user.username")
    versions = serializers.DictField(child=serializers.IntegerField())
    reports = serializers.DictField(child=serializers.IntegerField())
    decisions = serializers.SerializerMethodField()

    @extend_schema_field(DecisionOut(many=True))
    def get_decisions(self, obj: selectors.UploaderHistory) -> list[dict]:
        return [{"version": str(i.version), "status": i.status, "decided_at": i.decided_at, "reason": i.outcome_text}
                for i in obj.decisions]


class ReviewBundleOut(serializers.Serializer):
    item = ReviewItemOut()
    validation_report = serializers.JSONField(source="version.validation_report")
    card = serializers.JSONField(source="version.card")
    card_text = serializers.CharField(source="version.card_text")
    license = serializers.CharField(source="version.license")
    stats = serializers.JSONField(source="version.stats")
    files = serializers.SerializerMethodField()
    eval_results = serializers.ListField(child=serializers.DictField())
    diff = DiffOut(allow_null=True, help_text="null for a repository's first version")
    history = HistoryOut()

    @extend_schema_field(FileOut(many=True))
    def get_files(self, obj: selectors.ReviewBundle) -> list[dict]:
        return [{"path": f.path, "size": f.blob.size, "sha256": f.blob.sha256} for f in obj.files]


class DecisionIn(serializers.Serializer):
    reason_code = serializers.ChoiceField(choices=RejectReason.choices, required=False, default="",
                                          help_text="required to reject")
    note = TextField(required=False, default="", allow_blank=True,
                                 help_text="shown to the uploader; required to request changes or to reject as 'other'")


class BulkIn(DecisionIn):
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=200)
    decision = serializers.ChoiceField(choices=BULK_DECISIONS)


class BulkOut(serializers.Serializer):
    decided = serializers.ListField(child=serializers.IntegerField())
    refused = serializers.DictField(child=serializers.DictField(child=serializers.CharField()))


class ReportIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(TARGET_TYPES))
    name = TextField(help_text="owner/name of the adapter or dataset")
    version = serializers.IntegerField(required=False, min_value=1, help_text="default: the latest published")
    reason = serializers.ChoiceField(choices=ReportReason.choices)
    comment = RequiredText()


class ReportOut(serializers.ModelSerializer):
    target = TargetOut(source="*")
    reporter = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Report
        fields = ["id", "target", "reason", "comment", "reporter", "status", "created_at", "resolved_by",
                  "resolved_at", "resolution", "resolution_reason"]


class ResolveIn(serializers.Serializer):
    resolution = serializers.ChoiceField(choices=Resolution.choices)
    reason = RequiredText()


class TakedownOut(serializers.ModelSerializer):
    target = TargetOut(source="*")
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    lifted_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Takedown
        fields = ["id", "target", "kind", "reason", "created_by", "created_at", "lifted_by", "lifted_at",
                  "lift_reason"]


class ReasonIn(serializers.Serializer):
    reason = RequiredText()


class AuditOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name")

    class Meta:
        model = AuditEntry
        fields = ["id", "created_at", "actor", "action", "target_kind", "target_id", "target_label", "before",
                  "after", "reason"]


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return data.validated_data


# --- the queue -------------------------------------------------------------------------------------------


QUEUE_PARAMS = [
    OpenApiParameter("kind", str, description="adapter | dataset"),
    OpenApiParameter("base_model", str, description="base model name"),
    OpenApiParameter("uploader", str, description="uploader's username"),
    OpenApiParameter("flag", str, description=" | ".join(selectors.QUEUE_FLAGS)),
]


class Queue(ModerationApi, generics.ListAPIView):
    serializer_class = ReviewItemOut
    cursor_ordering = ("queued_at", "pk")

    def get_queryset(self):
        params = self.request.query_params
        return selectors.review_queue(selectors.QueueFilters(
            **{f: params.get(f, "") for f in selectors.QueueFilters.__dataclass_fields__}))

    @extend_schema(parameters=QUEUE_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class QueueItem(ModerationApi, APIView):
    @extend_schema(responses=ReviewBundleOut)
    def get(self, request: Request, item_id: int) -> Response:
        return Response(ReviewBundleOut(selectors.review_bundle(selectors.review_item_get(item_id))).data)


class QueueItemClaim(ModerationApi, APIView):
    """POST claims the item for CLAIM_TTL_SECONDS (again: renews); DELETE gives the claim up."""

    @extend_schema(request=None, responses={200: ReviewItemOut,
                                            409: api_error("another moderator holds the claim, or it is decided")})
    def post(self, request: Request, item_id: int) -> Response:
        review_item_claim(item_id=item_id, moderator=request.user)
        return Response(ReviewItemOut(selectors.review_item_get(item_id)).data)

    @extend_schema(responses={200: ReviewItemOut})
    def delete(self, request: Request, item_id: int) -> Response:
        review_item_release(item_id=item_id, moderator=request.user)
        return Response(ReviewItemOut(selectors.review_item_get(item_id)).data)


class QueueItemDecision(ModerationApi, APIView):
    """approve | reject | request-changes (the URL names the decision)."""

    @extend_schema(request=DecisionIn, responses={
        200: ReviewItemOut, 409: api_error("the item is decided, claimed by another moderator, or its version moved on")})
    def post(self, request: Request, item_id: int, decision: str) -> Response:
        data = _valid(DecisionIn, request)
        review_item_decide(item_id=item_id, moderator=request.user, decision=decision, **data)
        return Response(ReviewItemOut(selectors.review_item_get(item_id)).data)


class QueueBulk(ModerationApi, APIView):
    @extend_schema(request=BulkIn, responses=BulkOut)
    def post(self, request: Request) -> Response:
        data = _valid(BulkIn, request)
        outcome = review_items_decide_bulk(item_ids=data["ids"], moderator=request.user, decision=data["decision"],
                                           reason_code=data["reason_code"], note=data["note"])
        return Response(BulkOut(outcome).data)


# --- reports and takedowns -------------------------------------------------------------------------------


class Reports(ModerationApi, generics.ListCreateAPIView):
    """GET lists reports (moderators); POST reports an item (any signed-in user, with a write token)."""

    required_perm = RESOLVE
    serializer_class = ReportOut
    cursor_ordering = ("-created_at", "-pk")

    def get_permissions(self):
        if self.request.method == "POST":
            return [TokenScopePermission()]  # writes need a signed-in user
        return super().get_permissions()

    def get_queryset(self):
        params = self.request.query_params
        status_ = params.get("status", ReportStatus.OPEN)
        if status_ and status_ not in ReportStatus.values:
            raise ApiError("invalid_filter", f"status must be one of {', '.join(ReportStatus.values)}")
        return selectors.reports_list(status=status_, kind=params.get("kind", ""))

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["", *ReportStatus.values],
                                                description="open (default) | dismissed | upheld | empty for all"),
                               OpenApiParameter("kind", str, description="adapter | dataset")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ReportIn, responses={
        201: ReportOut, 409: api_error("the item is not published, or you reported it already")})
    def post(self, request: Request, *args, **kwargs) -> Response:
        data = _valid(ReportIn, request)
        # Among what the caller may see: a hidden version answers exactly as a missing one.
        target = target_type(data["kind"]).find(data["name"], data.get("version"), visible_to=request.user)
        report = report_create(reporter=request.user, kind=target.kind, target_id=target.id, reason=data["reason"],
                               comment=data["comment"])
        return Response(ReportOut(report).data, status=status.HTTP_201_CREATED)


class ReportResolve(ModerationApi, APIView):
    """Decides every open report on the same item as this one."""

    required_perm = RESOLVE

    @extend_schema(request=ResolveIn, responses={200: ReportOut(many=True),
                                                 409: api_error("the item has no open reports")})
    def post(self, request: Request, report_id: int) -> Response:
        data = _valid(ResolveIn, request)
        report = selectors.report_get(report_id)
        reports = reports_resolve(kind=report.target_kind, target_id=report.target_id, moderator=request.user,
                                  resolution=data["resolution"], reason=data["reason"])
        return Response(ReportOut(selectors.reports_list(status="").filter(pk__in=[r.pk for r in reports]),
                                  many=True).data)


class Takedowns(ModerationApi, generics.ListAPIView):
    required_perm = RESOLVE
    serializer_class = TakedownOut
    cursor_ordering = ("-created_at", "-pk")

    def get_queryset(self):
        return selectors.takedowns_active()


class TakedownRepublish(ModerationApi, APIView):
    required_perm = RESOLVE

    @extend_schema(request=ReasonIn, responses={200: TakedownOut, 409: api_error("it was re-published already, or reports still hide it")})
    def post(self, request: Request, takedown_id: int) -> Response:
        reason = _valid(ReasonIn, request)["reason"]
        return Response(TakedownOut(takedown_lift(takedown_id=takedown_id, moderator=request.user, reason=reason)).data)


# --- the audit log ---------------------------------------------------------------------------------------


# target_id is a number; empty, like absent, means any.
AUDIT_PARAMS = [OpenApiParameter(name, {"type": "string", "pattern": "^[0-9]{0,18}$"} if name == "target_id" else str)
                for name in audit_selectors.AuditFilters.__dataclass_fields__]


def audit_filters(request: Request) -> audit_selectors.AuditFilters:
    filters = audit_selectors.AuditFilters(**{f: request.query_params.get(f, "")
                                        for f in audit_selectors.AuditFilters.__dataclass_fields__})
    if filters.target_id and ascii_int(filters.target_id) is None:
        raise ApiError("invalid_filter", "target_id must be a number")
    return filters


class Audit(ModerationApi, generics.ListAPIView):
    required_perm = AUDIT
    serializer_class = AuditOut
    cursor_ordering = ("-created_at", "-pk")

    def get_queryset(self):
        return audit_selectors.audit_entries(audit_filters(self.request))

    @extend_schema(parameters=AUDIT_PARAMS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AuditCsv(ModerationApi, APIView):
    """The audit log (filtered like the list) as a CSV download; the audit page links here."""

    required_perm = AUDIT

    def perform_content_negotiation(self, request: Request, force: bool = False):
        return super().perform_content_negotiation(request, force=True)  # `Accept: text/csv` must not get a 406

    @extend_schema(parameters=AUDIT_PARAMS, responses={(200, "text/csv"): str})
    def get(self, request: Request) -> StreamingHttpResponse:
        response = StreamingHttpResponse(audit_selectors.audit_csv(audit_selectors.audit_entries(audit_filters(request))),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="nomoat-audit.csv"'
        return response
