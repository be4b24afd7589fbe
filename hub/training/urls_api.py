"""/api/v1/trainings routes."""

from django.urls import path

from hub.training import api

urlpatterns = [
    path("trainings", api.TrainingListCreate.as_view(), name="trainings"),
    path("trainings/<int:job_id>", api.TrainingDetail.as_view(), name="training-detail"),
    path("trainings/<int:job_id>/cancel", api.TrainingCancel.as_view(), name="training-cancel"),
]
