"""/api/v1/: every app's API views, one namespace."""

import csp.constants as csp
from csp.decorators import csp_replace
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from hub.accounts import api as accounts_api
from hub.api import redoc
from hub.catalog import api as catalog_api

app_name = "api"

REPO = "<str:owner>/<str:name>"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Pages of their own (templates/api/) only to put the CSP nonce on drf-spectacular's inline style and script.
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"),
         name="docs"),
    # ReDoc styles itself with styled-components, whose <style> tags cannot carry the request's nonce (the bundle
    # reads webpack's own): its page alone allows inline styles; scripts keep the nonce. Its bundle comes from
    # hub.api.redoc, without the logo it would fetch from cdn.redoc.ly.
    path("redoc/", csp_replace({"style-src": [csp.SELF, csp.UNSAFE_INLINE]})(
        SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html")), name="redoc"),
    path("redoc/redoc.standalone.js", redoc.redoc_bundle, name="redoc-bundle"),
    path("auth/tokens", accounts_api.TokenListCreate.as_view(), name="tokens"),
    path("auth/tokens/<int:token_id>", accounts_api.TokenRevoke.as_view(), name="token-revoke"),
    path("users", accounts_api.UserList.as_view(), name="user-list"),
    path("users/<str:username>", accounts_api.UserDetail.as_view(), name="user-detail"),
    path("uploads", catalog_api.UploadSessionCreate.as_view(), name="upload-sessions"),
    path("uploads/<uuid:session_id>", catalog_api.UploadSessionDetail.as_view(), name="upload-session"),
    path("uploads/<uuid:session_id>/complete", catalog_api.UploadSessionComplete.as_view(), name="upload-complete"),
    path("base-models", catalog_api.BaseModelList.as_view(), name="base-model-list"),
    path("base-models/<str:owner>/<str:name>", catalog_api.BaseModelDetail.as_view(), name="base-model-detail"),
    path("base-models/<str:owner>/<str:name>/files/<path:path>", catalog_api.BaseModelFileDownload.as_view(),
         name="base-model-file"),
]
for kind in ("adapter", "dataset"):
    k = {"kind": kind}
    urlpatterns += [
        path(f"{kind}s", catalog_api.RepositoryList.as_view(), k, name=f"{kind}-list"),
        path(f"{kind}s/{REPO}", catalog_api.RepositoryDetail.as_view(), k, name=f"{kind}-detail"),
        path(f"{kind}s/{REPO}/versions", catalog_api.VersionListUpload.as_view(), k, name=f"{kind}-versions"),
        path(f"{kind}s/{REPO}/versions/<int:number>", catalog_api.VersionDetail.as_view(), k,
             name=f"{kind}-version"),
        path(f"{kind}s/{REPO}/versions/<int:number>/files", catalog_api.VersionFileList.as_view(), k,
             name=f"{kind}-files"),
        path(f"{kind}s/{REPO}/versions/<int:number>/files/<path:path>", catalog_api.VersionFileDownload.as_view(),
             k, name=f"{kind}-file"),
    ]

# Each domain app owns its routes; they share the one `api` namespace.
for app in ("stacks", "evals", "moderation", "provenance", "datareports", "training", "federation"):
    urlpatterns.append(path("", include(f"hub.{app}.urls_api")))
