"""/api/v1/keys and /api/v1/blobs/<sha256>/{torrent,meta4} routes."""

from django.urls import path

from hub.provenance import api

urlpatterns = [
    path("keys", api.KeyList.as_view(), name="keys"),
    path("keys/current.pem", api.CurrentKeyPem.as_view(), name="key-current"),
    path("blobs/<str:sha256>/torrent", api.BlobTorrent.as_view(), name="blob-torrent"),
    path("blobs/<str:sha256>/meta4", api.BlobMetalink.as_view(), name="blob-metalink"),
]
