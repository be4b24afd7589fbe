"""The OCI distribution pull API at /v2/, where registry clients look for it."""

from django.urls import re_path

from hub.oci import views

NAME = r"(?P<name>[^/]+/[^/]+)"
urlpatterns = [
    re_path(r"^v2/$", views.ApiRoot.as_view()),
    re_path(rf"^v2/{NAME}/manifests/(?P<reference>[A-Za-z0-9_.:-]+)$", views.ManifestDetail.as_view()),
    re_path(rf"^v2/{NAME}/blobs/(?P<digest>sha256:[0-9a-f]{{64}})$", views.BlobDetail.as_view()),
    re_path(rf"^v2/{NAME}/tags/list$", views.TagList.as_view()),
]
