"""REST API for data reports: a dataset version's report (masked for all but its uploader and moderators), its
contamination checks and its curated mark; and collections of adapters and datasets."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.api.fields import TextField
from hub.api.schema import api_error
from hub.catalog.models import NAME_VALIDATOR, RepoKind, Version
from hub.catalog.selectors import repository_get_visible, sees_sensitive, version_get_visible
from hub.datareports.curation import (
    MAX_COLLECTION_ITEMS,
    collection_create,
    collection_delete,
    collection_update,
    dataset_version_curate,
    dataset_version_uncurate,
)
from hub.datareports.models import Collection, CollectionItem, JobState
from hub.datareports.selectors import (
    checks_payload,
    collection_get,
    collection_items_visible,
    collections_listed,
    contamination_checks,
    curation_of,
    curation_payload,
    report_for_version,
    report_for_viewer,
)


class DatasetContaminationOut(serializers.Serializer):
    training_dataset = serializers.CharField(help_text="owner/name@version whose training splits were read")
    eval_dataset = serializers.CharField()
    eval_split = serializers.CharField(help_text="empty: every data file of the eval dataset")
    overlap = serializers.FloatField(help_text="share of eval rows found in the training data")
    rows = serializers.IntegerField()
    eval_rows = serializers.IntegerField()
    ngram_rows = serializers.IntegerField(help_text="eval rows sharing a normalised 13-gram with the training data")
    near_rows = serializers.IntegerField(help_text="other eval rows nearly duplicating a training row (MinHash)")
    examples = serializers.ListField(child=serializers.DictField())


class CurationOut(serializers.Serializer):
    curated_by = serializers.CharField()
    curated_at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True)


class DataReportOut(serializers.Serializer):
    state = serializers.ChoiceField(choices=[*JobState.values, "none"])
    report_version = serializers.CharField(allow_blank=True)
    failure_reason = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    report = serializers.DictField(help_text="rows, splits, files, malformed, empty, overlong, duplicates, leakage, "
                                             "labels, lengths, sensitive (locations only for the uploader and "
                                             "moderators; every excerpt masked)")
    contamination = DatasetContaminationOut(many=True)
    curation = CurationOut(allow_null=True, help_text="set when a moderator marked this version curated")


class DataReportDetail(APIView):
    @extend_schema(responses=DataReportOut)
    def get(self, request: Request, owner: str, name: str, number: int) -> Response:
        repo = repository_get_visible(request.user, RepoKind.DATASET, owner, name)
        version = version_get_visible(request.user, repo, number)
        job = report_for_version(version)
        report = report_for_viewer(job.report, sensitive=sees_sensitive(request.user, version)) if job else {}
        return Response(DataReportOut({
            "state": job.state if job else "none", "report_version": job.report_version if job else "",
            "failure_reason": job.failure_reason if job else "", "finished_at": job.finished_at if job else None,
            "report": report, "contamination": checks_payload(contamination_checks(version)),
            "curation": curation_payload(curation_of(version)),
        }).data)


def _dataset_version(request: Request, owner: str, name: str, number: int) -> Version:
    repo = repository_get_visible(request.user, RepoKind.DATASET, owner, name)
    return version_get_visible(request.user, repo, number)


class CurationIn(serializers.Serializer):
    note = TextField(required=False, allow_blank=True, max_length=500)


class CurationDetail(APIView):
    """Moderators mark a published dataset version curated (POST) or take the mark away (DELETE); both audited."""

    @extend_schema(request=CurationIn, responses={201: CurationOut, 403: api_error("not a moderator")})
    def post(self, request: Request, owner: str, name: str, number: int) -> Response:
        data = CurationIn(data=request.data)
        data.is_valid(raise_exception=True)
        curation = dataset_version_curate(version=_dataset_version(request, owner, name, number),
                                          moderator=request.user, note=data.validated_data.get("note", ""))
        return Response(CurationOut(curation_payload(curation)).data, status=201)

    @extend_schema(responses={204: None, 403: api_error("not a moderator")})
    def delete(self, request: Request, owner: str, name: str, number: int) -> Response:
        dataset_version_uncurate(version=_dataset_version(request, owner, name, number), moderator=request.user)
        return Response(status=204)


# --- collections ------------------------------------------------------------------------------------------------------


class CollectionItemOut(serializers.Serializer):
    kind = serializers.CharField(source="repository.kind")
    full_name = serializers.CharField(source="repository.full_name")
    summary = serializers.CharField(source="repository.summary")
    url = serializers.SerializerMethodField()

    def get_url(self, obj: CollectionItem) -> str:
        repo = obj.repository
        return reverse(f"api:{repo.kind}-detail", kwargs={"owner": repo.owner.username, "name": repo.name})


class CollectionOut(serializers.Serializer):
    owner = serializers.CharField(source="owner.username")
    name = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    items = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    @extend_schema_field(CollectionItemOut(many=True))
    def get_items(self, obj: Collection) -> list[dict]:
        return CollectionItemOut(collection_items_visible(self.context["request"].user, obj), many=True).data

    def get_url(self, obj: Collection) -> str:
        return reverse("api:collection-detail", kwargs={"owner": obj.owner.username, "name": obj.name})


ITEM_REF = r"^(adapter|dataset):[A-Za-z0-9][A-Za-z0-9._-]{0,149}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$"


@extend_schema_field({"type": "array", "maxItems": MAX_COLLECTION_ITEMS, "uniqueItems": True,
                      "items": {"type": "string", "pattern": ITEM_REF},
                      "description": 'in order, each "adapter:owner/name" or "dataset:owner/name"; one that is not '
                                     "on the hub, or that you may not see, answers 404"})
class ItemRefs(serializers.ListField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(child=TextField(validators=[RegexValidator(ITEM_REF, "expected adapter:owner/name or "
                                                                              "dataset:owner/name")]),
                         max_length=MAX_COLLECTION_ITEMS, required=False, **kwargs)

    def to_internal_value(self, data: object) -> list[str]:
        refs = super().to_internal_value(data)
        if len(set(refs)) != len(refs):
            raise serializers.ValidationError("each item may be listed once")
        return refs


class CollectionIn(serializers.Serializer):
    name = TextField(max_length=96, validators=[NAME_VALIDATOR])
    title = TextField(max_length=200, trim_whitespace=False)
    description = TextField(required=False, allow_blank=True, max_length=5000)
    items = ItemRefs()


class CollectionChangeIn(serializers.Serializer):
    title = TextField(required=False, max_length=200, trim_whitespace=False)
    description = TextField(required=False, allow_blank=True, max_length=5000)
    items = ItemRefs()


class CollectionList(generics.ListAPIView):
    """GET: every collection, newest first. POST: make one of your own."""

    serializer_class = CollectionOut
    cursor_ordering = ("-updated_at", "-pk")

    def get_queryset(self):
        return collections_listed()

    @extend_schema(request=CollectionIn, responses={201: CollectionOut,
                                                    409: api_error("you already have a collection of that name")})
    def post(self, request: Request) -> Response:
        data = CollectionIn(data=request.data)
        data.is_valid(raise_exception=True)
        collection = collection_create(owner=request.user, **data.validated_data)
        return Response(CollectionOut(collection, context={"request": request}).data, status=201)


class CollectionDetail(APIView):
    """GET: a collection (items the viewer may not see left out). PATCH / DELETE: its owner only."""

    @extend_schema(responses=CollectionOut)
    def get(self, request: Request, owner: str, name: str) -> Response:
        return Response(CollectionOut(collection_get(owner, name), context={"request": request}).data)

    @extend_schema(request=CollectionChangeIn, responses={200: CollectionOut, 403: api_error("not its owner")})
    def patch(self, request: Request, owner: str, name: str) -> Response:
        data = CollectionChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        collection = collection_update(collection=collection_get(owner, name), user=request.user,
                                       **data.validated_data)
        return Response(CollectionOut(collection, context={"request": request}).data)

    @extend_schema(responses={204: None, 403: api_error("not its owner")})
    def delete(self, request: Request, owner: str, name: str) -> Response:
        collection_delete(collection=collection_get(owner, name), user=request.user)
        return Response(status=204)
