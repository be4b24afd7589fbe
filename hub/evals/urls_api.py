"""/api/v1/ routes of the evals app."""

urlpatterns: list = []
