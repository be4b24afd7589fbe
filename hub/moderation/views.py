"""Moderation pages: queue and review, reports, takedowns, uploaders, audit log; reporting and notifications.

Moderator pages send anonymous visitors to log in and answer 403 to everyone else without the
permission. Views only parse the request and call services and selectors.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from hub.accounts.models import Role, User
from hub.accounts.services import user_set_role
from hub.audit import selectors as audit_selectors
from hub.catalog.models import RepoKind
from hub.catalog.selectors import base_models_all
from hub.core.params import ascii_int
from hub.moderation import selectors
from hub.moderation.models import RejectReason, ReportReason, Resolution
from hub.moderation.services.notifications import notifications_mark_read
from hub.moderation.services.refusals import ModerationError
from hub.moderation.services.reports import report_create, reports_resolve
from hub.moderation.services.review import (
    review_item_claim,
    review_item_decide,
    review_item_release,
    review_items_decide_bulk,
)
from hub.moderation.services.takedowns import takedown_lift
from hub.moderation.targets import TargetNotFound, target_get

PAGE_SIZE = 50
View = Callable[..., HttpResponse]


def moderators_with(perm: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        return login_required(permission_required(perm, raise_exception=True)(view))

    return decorate


review_pages = moderators_with("moderation.review_version")
report_pages = moderators_with("moderation.resolve_report")
audit_pages = moderators_with("audit.view_auditentry")


def _refused(request: HttpRequest, exc: ModerationError) -> None:
    """Show why a request was refused; something that does not exist is a 404, as anywhere else."""
    if exc.status == 404:
        raise Http404(exc.message)
    messages.error(request, exc.message)


def _filters(request: HttpRequest, cls: type):
    return cls(**{name: request.GET.get(name, "") for name in cls.__dataclass_fields__})


# --- the queue -------------------------------------------------------------------------------------------


@review_pages
def queue(request: HttpRequest) -> HttpResponse:
    filters = _filters(request, selectors.QueueFilters)
    page = Paginator(selectors.review_queue(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "moderation/queue.html", {
        "page": page, "filters": filters, "flags": selectors.QUEUE_FLAGS, "kinds": RepoKind.choices,
        "base_models": base_models_all(), "reject_reasons": RejectReason.choices, "now": timezone.now(),
    })


@review_pages
def queue_item(request: HttpRequest, item_id: int) -> HttpResponse:
    bundle = selectors.review_bundle(selectors.review_item_get(item_id))
    return render(request, "moderation/item.html", {"b": bundle, "reject_reasons": RejectReason.choices})


@review_pages
@require_POST
def queue_claim(request: HttpRequest, item_id: int) -> HttpResponse:
    try:
        if request.POST.get("release"):
            review_item_release(item_id=item_id, moderator=request.user)
        else:
            review_item_claim(item_id=item_id, moderator=request.user)
    except ModerationError as exc:
        _refused(request, exc)
    return redirect("moderation-item", item_id=item_id)


@review_pages
@require_POST
def queue_decide(request: HttpRequest, item_id: int, decision: str) -> HttpResponse:
    try:
        item = review_item_decide(item_id=item_id, moderator=request.user, decision=decision,
                                  reason_code=request.POST.get("reason_code", ""), note=request.POST.get("note", ""))
    except ModerationError as exc:
        _refused(request, exc)
        return redirect("moderation-item", item_id=item_id)
    messages.success(request, f"{item.version}: {item.get_status_display().lower()}.")
    return redirect("moderation-queue")


@review_pages
@require_POST
def queue_bulk(request: HttpRequest) -> HttpResponse:
    ids = [n for n in map(ascii_int, request.POST.getlist("ids")) if n is not None]
    try:
        outcome = review_items_decide_bulk(item_ids=ids, moderator=request.user,
                                           decision=request.POST.get("decision", ""),
                                           reason_code=request.POST.get("reason_code", ""),
                                           note=request.POST.get("note", ""))
    except ModerationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"{len(outcome.decided)} decided.")
        for item_id, refusal in outcome.refused.items():
            messages.error(request, f"item {item_id}: {refusal['message']}")
    return redirect("moderation-queue")


# --- reports, takedowns, uploaders -----------------------------------------------------------------------


@report_pages
def reports(request: HttpRequest) -> HttpResponse:
    return render(request, "moderation/reports.html", {
        "items": selectors.reported_items(), "resolved": selectors.reports_recently_resolved(),
        "resolutions": Resolution.choices,
    })


@report_pages
@require_POST
def reports_decide(request: HttpRequest, kind: str, target_id: int) -> HttpResponse:
    try:
        reports_resolve(kind=kind, target_id=target_id, moderator=request.user,
                        resolution=request.POST.get("resolution", ""), reason=request.POST.get("reason", ""))
    except ModerationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, "Reports resolved.")
    return redirect("moderation-reports")


@report_pages
def takedowns(request: HttpRequest) -> HttpResponse:
    return render(request, "moderation/takedowns.html", {"takedowns": selectors.takedowns_active()})


@report_pages
@require_POST
def takedown_republish(request: HttpRequest, takedown_id: int) -> HttpResponse:
    try:
        takedown = takedown_lift(takedown_id=takedown_id, moderator=request.user, reason=request.POST.get("reason", ""))
    except ModerationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"{takedown.target_label} is published again.")
    return redirect("moderation-takedowns")


@review_pages
def uploader(request: HttpRequest, username: str) -> HttpResponse:
    user = get_object_or_404(User, username=username)
    return render(request, "moderation/uploader.html", {
        "history": selectors.uploader_history(user), "roles": Role.choices,
        "audit": audit_selectors.audit_entries(audit_selectors.AuditFilters(target_kind="user", target_id=str(user.pk)))[:20],
    })


@login_required
@permission_required("accounts.change_user", raise_exception=True)
@require_POST
def uploader_role(request: HttpRequest, username: str) -> HttpResponse:
    user = get_object_or_404(User, username=username)
    try:
        user_set_role(user=user, role=request.POST.get("role", ""), by=request.user,
                      reason=request.POST.get("reason", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.username} is now {user.get_role_display()}.")
    return redirect("moderation-uploader", username=username)


# --- the audit log ---------------------------------------------------------------------------------------


@audit_pages
def audit(request: HttpRequest) -> HttpResponse:
    filters = _filters(request, audit_selectors.AuditFilters)
    page = Paginator(audit_selectors.audit_entries(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "moderation/audit.html", {
        "page": page, "filters": filters, "actions": audit_selectors.audit_actions(),
        "csv_url": f"{reverse('api:moderation-audit-csv')}?{query.urlencode()}",
    })


# --- for everyone signed in ------------------------------------------------------------------------------


@login_required
def report_new(request: HttpRequest, kind: str, target_id: int) -> HttpResponse:
    try:
        target = target_get(kind, target_id, visible_to=request.user)
    except TargetNotFound as exc:
        raise Http404(str(exc)) from None
    error = None
    if request.method == "POST":
        try:
            report_create(reporter=request.user, kind=kind, target_id=target_id,
                          reason=request.POST.get("reason", ""), comment=request.POST.get("comment", ""))
        except ModerationError as exc:
            error = exc.message
        else:
            messages.success(request, f"Thank you: your report on {target.label} was sent to the moderators.")
            return redirect(target.url)
    return render(request, "moderation/report_form.html", {
        "target": target, "reasons": ReportReason.choices, "error": error, "posted": request.POST,
    }, status=400 if error else 200)


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        notifications_mark_read(user=request.user)
        return redirect("notifications")
    page = Paginator(selectors.notifications_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "moderation/notifications.html", {"page": page})
