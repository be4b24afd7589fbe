"""Eval pages: leaderboards with their charts, a run's per-item view, a stack's eval card, the re-run button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from hub.catalog.models import RepoKind
from hub.catalog.selectors import repository_get_visible, version_get_visible
from hub.core.formatting import metric_label
from hub.evals import charts
from hub.evals.api import leaderboard_from
from hub.evals.selectors.cards import stack_eval_cards
from hub.evals.selectors.leaderboards import KINDS, SORTS, Leaderboard, leaderboards_index
from hub.evals.selectors.runs import run_get_visible, version_eval_progress
from hub.evals.services import RerunRefused, eval_run_rerun
from hub.stacks.selectors import stack_get, stack_withdrawn_reason

RECORDS_PER_PAGE = 50
BOARD_ROWS_SHOWN = 50  # the first rows of a long board in its order; `?rows=all` lists every one (the chart always plots all)
X_AXES = {"size": ("size (log scale)", True), "bpw": ("bits per weight", False)}


def leaderboards(request: HttpRequest) -> HttpResponse:
    return render(request, "evals/leaderboards.html", {"boards": leaderboards_index()})


def leaderboard_chart(board: Leaderboard, x_axis: str) -> str:
    """Score against size (every row) or bits per weight (rows that hold whole models)."""
    label, log_x = X_AXES[x_axis]
    points = [charts.Point(entry.size / 1e6 if x_axis == "size" else entry.bits_per_weight, entry.value, entry.name,
                           entry.kind)
              for entry in board.entries
              if entry.value is not None and (entry.size > 0 if x_axis == "size" else entry.bits_per_weight)]
    metric = metric_label(board.metric)
    return charts.scatter(points, x_label=label, y_label=metric, log_x=log_x, x_megabytes=x_axis == "size",
                          title=f"{board.suite} {metric} against {label}")


def leaderboard_page(request: HttpRequest, owner: str, name: str) -> HttpResponse:
    board = leaderboard_from(request, owner, name)
    x_axis = request.GET.get("x") if request.GET.get("x") in X_AXES else "size"
    shown = board.entries if request.GET.get("rows") == "all" else board.entries[:BOARD_ROWS_SHOWN]
    return render(request, "evals/leaderboard.html", {
        "board": board, "shown": shown, "chart": leaderboard_chart(board, x_axis), "x_axis": x_axis,
        "suites": [b.suite for b in leaderboards_index() if b.base_model == board.base_model.name],
        "kinds": KINDS, "sorts": SORTS, "params": request.GET,
    })


def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    """Every item of a run: its input, the choices' log-likelihoods or the generated output, right or wrong."""
    run = run_get_visible(request.user, run_id)
    page = Paginator(run.records or [], RECORDS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "evals/run.html", {"run": run, "page": page})


@login_required
@require_POST
def run_rerun(request: HttpRequest, run_id: int) -> HttpResponse:
    """The moderators' button: anyone else gets 403 (eval_run_rerun refuses)."""
    run = run_get_visible(request.user, run_id)
    try:
        eval_run_rerun(run=run, moderator=request.user)
        messages.success(request, f"{run} is queued again.")
    except RerunRefused as exc:
        messages.error(request, str(exc))
    return redirect("eval-run-page", run_id=run.pk)


def version_evals_progress(request: HttpRequest, owner: str, name: str, number: int) -> HttpResponse:
    """The live part of an adapter version's status page: each eval run's stage, re-fetched until all are done."""
    repo = repository_get_visible(request.user, RepoKind.ADAPTER, owner, name)
    version = version_get_visible(request.user, repo, number)
    return render(request, "evals/_progress.html", {"repo": repo, "version": version,
                                                    "progress": version_eval_progress(version)})


def stack_evals_page(request: HttpRequest, recipe_hash: str) -> HttpResponse:
    build = stack_get(recipe_hash)
    withdrawn = stack_withdrawn_reason(build)
    if withdrawn and not getattr(request.user, "is_moderator", False):
        raise Http404(withdrawn)
    return render(request, "evals/stack.html", {"build": build, "cards": stack_eval_cards(build),
                                                "label": build.display_name})
