"""Page routes of the evals app."""

from django.urls import path

from hub.evals import views

urlpatterns = [
    path("leaderboards/", views.leaderboards, name="leaderboards"),
    path("leaderboards/<str:owner>/<str:name>", views.leaderboard_page, name="leaderboard-page"),
    path("evals/runs/<int:run_id>", views.run_page, name="eval-run-page"),
    path("evals/runs/<int:run_id>/rerun", views.run_rerun, name="eval-run-rerun-page"),
    path("adapters/<str:owner>/<str:name>/v/<int:number>/evals", views.version_evals_progress,
         name="adapter-version-evals"),
    path("stacks/<str:recipe_hash>/evals", views.stack_evals_page, name="stack-evals-page"),
]
