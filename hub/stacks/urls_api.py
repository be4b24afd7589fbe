"""/api/v1/stacks routes."""

from django.urls import path

from hub.stacks import api

urlpatterns = [
    path("stacks", api.StackListCreate.as_view(), name="stacks"),
    path("stacks/<str:recipe_hash>", api.StackDetail.as_view(), name="stack-detail"),
    path("stacks/<str:recipe_hash>/files/<path:path>", api.StackFileDownload.as_view(), name="stack-file"),
]
