"""Training pages."""

from django.urls import path

from hub.training import views

urlpatterns = [
    path("trainings/", views.training_list, name="training-list"),
    path("trainings/new", views.training_new, name="training-new"),
    path("trainings/<int:job_id>", views.training_page, name="training-page"),
    path("trainings/<int:job_id>/live.json", views.training_live, name="training-live"),
]
