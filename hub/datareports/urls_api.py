"""/api/v1/ routes of the data reports app."""

from django.urls import path

from hub.datareports import api

urlpatterns = [
    path("datasets/<str:owner>/<str:name>/versions/<int:number>/report", api.DataReportDetail.as_view(),
         name="dataset-version-report"),
    path("datasets/<str:owner>/<str:name>/versions/<int:number>/curation", api.CurationDetail.as_view(),
         name="dataset-version-curation"),
    path("collections", api.CollectionList.as_view(), name="collection-list"),
    path("collections/<str:owner>/<str:name>", api.CollectionDetail.as_view(), name="collection-detail"),
]
