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


class LastCommitOut(serializers.Serializer):
    id = serializers.CharField(source="sha")
    title = serializers.CharField()
    date = serializers.DateTimeField(source="last_modified")


def tree_out(entries: list[HubFile | HubFolder], last_commits: dict[str, Revision] | None = None) -> list[dict]:
    """Tree entries; with `last_commits` (the `expand` of the client), each file's last commit too."""
    out = []
    for entry in entries:
        data = (TreeFileOut if isinstance(entry, HubFile) else TreeFolderOut)(entry).data
        if last_commits is not None and entry.path in last_commits:
            data = {**data, "lastCommit": LastCommitOut(last_commits[entry.path]).data}
        out.append(data)
    return out


class TreeIn(serializers.Serializer):
    recursive = serializers.BooleanField(default=False)
    expand = serializers.BooleanField(default=False)


class PathsInfoIn(serializers.Serializer):
    paths = serializers.ListField(child=serializers.CharField(max_length=1000), max_length=1000)
    expand = serializers.BooleanField(default=False)


class CommitOut(serializers.Serializer):
    """A version as `list_repo_commits` reads a commit."""

    id = serializers.CharField(source="sha")
    title = serializers.CharField()
    message = serializers.CharField(source="title")
    authors = serializers.SerializerMethodField()
    date = serializers.DateTimeField(source="last_modified")

    def get_authors(self, revision: Revision) -> list[dict]:
        return [{"user": revision.author}]


def refs_out(revision: Revision) -> dict:
    """`list_repo_refs`: the branch `main` and a tag `v<N>` per version the caller may see."""
    tags = [{"name": r.ref, "ref": f"refs/tags/{r.ref}", "targetCommit": r.sha} for r in revision.history if r.ref]
    return {"branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": revision.sha}],
            "tags": tags, "converts": [], "pullRequests": []}


class RepoListIn(serializers.Serializer):
    """The query of `list_models` / `list_datasets` (`limit` belongs to the pagination)."""

    search = serializers.ListField(child=serializers.CharField(), default=list)
    author = serializers.CharField(default="")
    filter = serializers.ListField(child=serializers.CharField(), default=list)  # tags, all required
    pipeline_tag = serializers.CharField(default="")
    sort = serializers.ChoiceField(choices=list(SORTS), default="createdAt")
    direction = serializers.IntegerField(default=-1)  # -1: descending; the Hub reads anything else as ascending
