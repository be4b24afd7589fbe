"""Page routes of the data reports app."""

from django.urls import path

from hub.datareports import views

urlpatterns = [
    path("datasets/<str:owner>/<str:name>/v/<int:number>/curate", views.curate, name="dataset-curate"),
    path("collections/", views.collections_page, name="collections"),
    path("collections/<str:owner>/<str:name>", views.collection_page, name="collection-page"),
]
