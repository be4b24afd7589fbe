"""Reads of single eval runs, with who may see them."""

from __future__ import annotations

from django.http import Http404

from hub.catalog.selectors import versions_visible_to
from hub.evals.models import EvalRun
from hub.stacks.selectors import stacks_listed


def run_get_visible(user, run_id: int) -> EvalRun:
    """A run the user may see: a base model's, or one whose adapter, stack and dataset they may see."""
    run = EvalRun.objects.select_related("base_model", "version__repository__owner", "build",
                                         "dataset_version__repository__owner").filter(pk=run_id).first()
    if run is None or not _may_see(user, run):
        raise Http404(f"no eval run {run_id}")
    return run


def _may_see(user, run: EvalRun) -> bool:
    visible = versions_visible_to(user)
    if run.version_id and not visible.filter(pk=run.version_id).exists():
        return False
    if run.dataset_version_id and not visible.filter(pk=run.dataset_version_id).exists():
        return False
    if run.build_id and not getattr(user, "is_moderator", False):
        return stacks_listed().filter(pk=run.build_id).exists()
    return True
