"""/api/v1/ routes of the evals app."""

from django.urls import path

from hub.evals import api

urlpatterns = [
    path("adapters/<str:owner>/<str:name>/evals", api.AdapterEvals.as_view(), name="adapter-evals"),
    path("evals/runs/<int:run_id>", api.RunDetail.as_view(), name="eval-run"),
    path("evals/runs/<int:run_id>/rerun", api.RunRerun.as_view(), name="eval-run-rerun"),
    path("leaderboards", api.LeaderboardList.as_view(), name="leaderboards"),
    path("leaderboards/<str:owner>/<str:name>", api.LeaderboardDetail.as_view(), name="leaderboard"),
    path("stacks/<str:recipe_hash>/evals", api.StackEvals.as_view(), name="stack-evals"),
]
