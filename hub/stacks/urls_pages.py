"""Stack pages."""

from django.urls import path

from hub.stacks import views

urlpatterns = [
    path("stacks/", views.stack_list, name="stack-list"),
    path("stacks/new", views.stack_builder, name="stack-builder"),
    path("stacks/<str:recipe_hash>", views.stack_page, name="stack-page"),
    path("stacks/<str:recipe_hash>/files/<path:path>", views.stack_file, name="stack-file-page"),
]
