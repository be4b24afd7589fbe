"""Training pages: the "Train an adapter" form (from a dataset page), your jobs, and a job's live page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string

from hub.catalog.models import BaseModel
from hub.evals.charts import line
from hub.training import selectors
from hub.training.models import ACTIVE_STATES, TrainingJob
from hub.training.services import TrainingRequestError, training_cancel, training_request
from workers.engine.training import TrainingSpec

CHART_POINTS = 16  # the page's loss curve: readable step ticks at 390 px
FORM_DEFAULTS = {"rank": 8, "alpha": 16, "dropout": 0.0, "target_modules": "q_proj, v_proj", "steps": 200,
                 "learning_rate": 2e-4, "batch_size": 8, "max_seq_len": 256, "seed": 0, "split": "train"}


def _form_request(post: dict, user) -> dict:
    """The form's fields as the API's request (numbers parsed; a field that is not one is passed on as text, so the
    service names it in its refusal)."""

    def number(name: str, kind: type) -> object:
        text = post.get(name, "").strip()
        try:
            return kind(text)
        except ValueError:
            return text

    modules = [m.strip() for m in post.get("target_modules", "").split(",") if m.strip()]
    request = {
        "base_model": post.get("base_model", ""), "dataset": post.get("dataset", ""), "split": post.get("split", ""),
        "into": f"{user.username}/{post.get('name', '').strip()}",
        "lora": {"rank": number("rank", int), "alpha": number("alpha", float), "dropout": number("dropout", float),
                 "target_modules": modules, "use_rslora": post.get("use_rslora") == "on"},
        "steps": number("steps", int), "learning_rate": number("learning_rate", float),
        "batch_size": number("batch_size", int), "max_seq_len": number("max_seq_len", int), "seed": number("seed", int),
    }
    if post.get("eval_split"):
        request["eval_split"] = post["eval_split"]
    return request


@login_required
def training_new(request: HttpRequest) -> HttpResponse:
    """The form posts here; a refusal is shown beside the form with the field it names."""
    values = {**FORM_DEFAULTS, **request.GET.dict(), **request.POST.dict()}
    error = None
    if request.method == "POST":
        try:
            job, _ = training_request(user=request.user, request=_form_request(request.POST, request.user))
            return redirect("training-page", job_id=job.pk)
        except TrainingRequestError as exc:
            error = exc
    datasets = list(selectors.datasets_to_train_on(request.user))
    chosen = next((d for d in datasets if str(d) == values.get("dataset") or d.repository.full_name == values.get(
        "dataset")), datasets[0] if datasets else None)
    bases = list(BaseModel.objects.order_by("name"))
    base = next((b for b in bases if b.name == values.get("base_model")), bases[0] if bases else None)
    estimate = None
    if chosen is not None and base is not None:
        try:
            spec = TrainingSpec.from_dict({"steps": int(values["steps"]), "batch_size": int(values["batch_size"]),
                                           "max_seq_len": int(values["max_seq_len"])})
            estimate = selectors.training_estimate(base=base, dataset=chosen, steps=spec.steps,
                                                   batch_size=spec.batch_size, max_seq_len=spec.max_seq_len)
        except (ValueError, TypeError):
            estimate = None
    return render(request, "training/new.html", {
        "datasets": datasets, "chosen": chosen, "bases": bases, "base": base, "values": values, "error": error,
        "splits": sorted(((chosen.stats or {}).get("splits") or {}) if chosen else []), "estimate": estimate,
    })


@login_required
def training_list(request: HttpRequest) -> HttpResponse:
    return render(request, "training/list.html", {"jobs": selectors.jobs_of(request.user)[:100]})


def _chart(job: TrainingJob) -> str:
    history = job.loss_history or []
    stride = max(1, -(-len(history) // CHART_POINTS))
    points = [(step, loss) for step, loss in history[stride - 1::stride]]
    if history and (not points or points[-1][0] != history[-1][0]):
        points.append(tuple(history[-1]))
    return line(points, x_label="step", y_label="training loss", title=f"Training loss of job {job.pk}",
                reference=(job.result or {}).get("eval_loss"), reference_label="eval loss")


def _live(request: HttpRequest, job: TrainingJob) -> str:
    return render_to_string("training/_live.html", {"job": job, "chart": _chart(job)}, request=request)


@login_required
def training_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job = selectors.job_get_visible(request.user, job_id)
    if request.method == "POST":  # the Cancel button
        training_cancel(user=request.user, job=job)
        return redirect("training-page", job_id=job.pk)
    return render(request, "training/detail.html", {"job": job, "live": _live(request, job)})


@login_required
def training_live(request: HttpRequest, job_id: int) -> JsonResponse:
    """What the job page polls: whether the job has ended, and its live part (numbers and the loss curve)."""
    job = selectors.job_get_visible(request.user, job_id)
    return JsonResponse({"state": job.state, "settled": job.state not in ACTIVE_STATES, "step": job.step,
                         "html": _live(request, job)})
