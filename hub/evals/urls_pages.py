"""Page routes of the evals app."""

urlpatterns: list = []
