"""Hugging Face Hub-compatible routes, at the site root where huggingface_hub looks for them (`HF_ENDPOINT`)."""

from django.urls import path, register_converter

from hub.hfcompat import views


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
    ]
urlpatterns += [
    path(f"datasets/{REPO}/resolve/<str:revision>/<path:path>", views.ResolveFile.as_view(), {"repo_type": "dataset"}),
    path("<model_namespace:namespace>/<str:name>/resolve/<str:revision>/<path:path>", views.ResolveFile.as_view(),
         {"repo_type": "model"}),
]
