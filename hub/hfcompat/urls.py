"""Hugging Face Hub-compatible routes, at the site root where huggingface_hub looks for them (`HF_ENDPOINT`)."""

from django.urls import path, re_path, register_converter

from hub.hfcompat import views, writes

app_name = "hfcompat"


class ModelNamespaceConverter:
    """The owner in `<owner>/<name>/resolve/...`, except the page prefixes `adapters` and `datasets`.

    Without the exception, the version pages of a repository named `resolve` (`adapters/<owner>/resolve/v/1`) would
    be taken for downloads; `datasets/...` is the dataset prefix on the Hub too.
    """

    regex = r"(?!(?:adapters|datasets)/)[^/]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelNamespaceConverter, "model_namespace")

REPO = "<str:namespace>/<str:name>"
urlpatterns = []
for prefix, repo_type in (("models", "model"), ("datasets", "dataset")):
    kwargs = {"repo_type": repo_type}
    urlpatterns += [
        path(f"api/{prefix}", views.RepoList.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}", views.RepoInfo.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/revision/<str:revision>", views.RepoInfo.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/tree/<str:revision>", views.RepoTree.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/tree/<str:revision>/<path:path>", views.RepoTree.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/paths-info/<str:revision>", views.PathsInfo.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/commits/<str:revision>", views.RepoCommits.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/refs", views.RepoRefs.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/preupload/<str:revision>", writes.Preupload.as_view(), kwargs),
        path(f"api/{prefix}/{REPO}/commit/<str:revision>", writes.commit_create, kwargs),
    ]
urlpatterns += [
    path("api/repos/create", writes.RepoCreate.as_view()),
    path("api/validate-yaml", writes.ValidateYaml.as_view()),
    path("api/lfs/verify", writes.LfsVerify.as_view(), name="lfs-verify"),
    path("api/lfs/uploads/<str:token>", writes.LfsUpload.as_view(), name="lfs-upload"),
    path("api/lfs/uploads/<str:token>/<int:part>", writes.LfsUploadPart.as_view(), name="lfs-upload-part"),
    # The Git LFS batch API of a repository: `<id>.git/info/lfs/objects/batch`, under `datasets/` for datasets.
    re_path(r"^datasets/(?P<namespace>[^/]+)/(?P<name>[^/]+)\.git/info/lfs/objects/batch$", writes.LfsBatch.as_view(),
            {"repo_type": "dataset"}),
    re_path(r"^(?P<namespace>[^/]+)/(?P<name>[^/]+)\.git/info/lfs/objects/batch$", writes.LfsBatch.as_view(),
            {"repo_type": "model"}),
    path(f"datasets/{REPO}/resolve/<str:revision>/<path:path>", views.ResolveFile.as_view(), {"repo_type": "dataset"}),
    path("<model_namespace:namespace>/<str:name>/resolve/<str:revision>/<path:path>", views.ResolveFile.as_view(),
         {"repo_type": "model"}),
]
