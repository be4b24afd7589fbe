"""The Hub's JSON, field for field as huggingface_hub reads it (ModelInfo, DatasetInfo, RepoFile, RepoFolder).

Field names are the Hub's (camelCase where it uses camelCase), not Python's.
"""

from __future__ import annotations

from rest_framework import serializers

from hub.hfcompat.selectors import SORTS, HubFile, HubFolder, Revision


class SiblingLfsOut(serializers.Serializer):
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    pointerSize = serializers.IntegerField(source="pointer_size")


class SiblingOut(serializers.Serializer):
    rfilename = serializers.CharField(source="path")
    size = serializers.IntegerField()
    blobId = serializers.CharField(source="blob_id")
    lfs = SiblingLfsOut(source="*")


class DatasetInfoOut(serializers.Serializer):
    # What nomoat has no notion of, answered as the Hub answers for a public, ungated repository.
    ABSENT = {"disabled": False, "gated": False, "likes": 0}

    id = serializers.CharField(source="repo_id")
    author = serializers.CharField()
    sha = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")
    lastModified = serializers.DateTimeField(source="last_modified")
    private = serializers.BooleanField()
    downloads = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())
    cardData = serializers.DictField(source="card_data", allow_null=True)
    siblings = SiblingOut(source="files", many=True)

    def to_representation(self, instance: Revision) -> dict:
        return {**super().to_representation(instance), **self.ABSENT}


class ModelInfoOut(DatasetInfoOut):
    pipeline_tag = serializers.CharField(allow_null=True)
    library_name = serializers.CharField(allow_null=True)


def info_out(revisions: list[Revision]) -> list[dict]:
    return [(ModelInfoOut if r.repo_type == "model" else DatasetInfoOut)(r).data for r in revisions]


class TreeLfsOut(serializers.Serializer):
    oid = serializers.CharField(source="sha256")
    size = serializers.IntegerField()
    pointerSize = serializers.IntegerField(source="pointer_size")


class TreeFileOut(serializers.Serializer):
    type = serializers.CharField()
    oid = serializers.CharField(source="blob_id")
    size = serializers.IntegerField()
    path = serializers.CharField()
    lfs = TreeLfsOut(source="*")


class TreeFolderOut(serializers.Serializer):
    type = serializers.CharField()
    oid = serializers.CharField()
    path = serializers.CharField()


def tree_out(entries: list[HubFile | HubFolder]) -> list[dict]:
    return [(TreeFileOut if isinstance(e, HubFile) else TreeFolderOut)(e).data for e in entries]


class TreeIn(serializers.Serializer):
    recursive = serializers.BooleanField(default=False)


class RepoListIn(serializers.Serializer):
    """The query of `list_models` / `list_datasets` (`limit` belongs to the pagination)."""

    search = serializers.ListField(child=serializers.CharField(), default=list)
    author = serializers.CharField(default="")
    filter = serializers.ListField(child=serializers.CharField(), default=list)  # tags, all required
    pipeline_tag = serializers.CharField(default="")
    sort = serializers.ChoiceField(choices=list(SORTS), default="createdAt")
    direction = serializers.IntegerField(default=-1)  # -1: descending; the Hub reads anything else as ascending
