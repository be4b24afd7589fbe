"""ActivityPub endpoints (actors, inboxes, outboxes, followers), WebFinger, NodeInfo, and the admin page /federation/.

Actor URLs answer JSON to `application/activity+json` / `application/ld+json` and send browsers to the page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from hub.accounts.models import User
from hub.core.errors import ServiceError
from hub.federation import actors, selectors, services
from hub.federation.inbox import Refusal, inbox_receive
from hub.federation.models import OutboxActivity, PeerMode, TakedownPolicy
from hub.federation.outbox import outbox_document

JRD = "application/jrd+json"


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "activity+json" in accept or "ld+json" in accept or "application/json" in accept


def _as_json(document: dict, status: int = 200, content_type: str = actors.ACTIVITY_JSON) -> JsonResponse:
    response = JsonResponse(document, status=status, content_type=content_type, json_dumps_params={"indent": None})
    response["Vary"] = "Accept"
    return response


def _refusal(status: int, error: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": error, "detail": detail}, status=status)


def _actor_user(username: str | None) -> User | None:
    if username is None:
        return None
    user = actors.local_actor_user(username)
    if user is None:
        raise Http404("no such actor")
    return user


@require_GET
def actor(request: HttpRequest, username: str | None = None) -> HttpResponse:
    user = _actor_user(username)
    if not _wants_json(request):
        return redirect("user-page", username=user.username) if user else redirect("home")
    return _as_json(actors.actor_document(user))


@csrf_exempt
def inbox(request: HttpRequest, username: str | None = None, shared: bool = False) -> HttpResponse:
    """POST an activity (HTTP-signed). GET is refused: inboxes are not listed."""
    if not shared:
        _actor_user(username)  # a missing actor's inbox is missing too
    if request.method != "POST":
        return _refusal(405, "method_not_allowed", "an inbox takes POST of a signed activity")
    body = request.read(settings.NOMOAT_FEDERATION_MAX_ACTIVITY_BYTES + 1)  # one byte more tells it is too large
    try:
        activity_id = inbox_receive(method="POST", url=actors.absolute(request.get_full_path()), body=body,
                                    headers={**request.headers, "Host": request.get_host()})
    except Refusal as refusal:
        return _refusal(refusal.status, refusal.error, refusal.detail)
    return JsonResponse({"accepted": activity_id}, status=202)


@require_GET
def outbox(request: HttpRequest, username: str | None = None) -> HttpResponse:
    user = _actor_user(username)
    cursors = {}
    for name in ("min_id", "max_id"):
        value = request.GET.get(name)
        if value is not None:
            if not value.isdigit():
                return _refusal(400, "bad_cursor", f"{name}={value!r}: expected a non-negative integer")
            cursors[name] = int(value)
    return _as_json(outbox_document(user, page="page" in request.GET or bool(cursors),
                                    min_id=cursors.get("min_id"), max_id=cursors.get("max_id")))


@require_GET
def followers(request: HttpRequest, username: str | None = None) -> HttpResponse:
    """The count only: who follows is not published."""
    user = _actor_user(username)
    return _as_json({"@context": actors.CONTEXT, "id": actors.collection_url(user, "followers"),
                     "type": "OrderedCollection", "totalItems": selectors.followers_count(user)})


@require_GET
def following(request: HttpRequest, username: str | None = None) -> HttpResponse:
    user = _actor_user(username)
    return _as_json({"@context": actors.CONTEXT, "id": actors.collection_url(user, "following"),
                     "type": "OrderedCollection", "totalItems": 0 if user else selectors.following_count()})


@require_GET
def activity(request: HttpRequest, activity_uuid: str) -> HttpResponse:
    found = get_object_or_404(OutboxActivity, activity_id=actors.absolute(request.path), public=True)
    return _as_json(found.data)


@require_GET
def webfinger(request: HttpRequest) -> HttpResponse:
    resource = request.GET.get("resource", "")
    name, _, host = resource.removeprefix("acct:").lstrip("@").partition("@")
    if not resource.startswith("acct:") or not name or host.lower() != actors.public_host().lower():
        if not resource:
            return _refusal(400, "bad_resource", "resource: expected acct:<name>@" + actors.public_host())
        raise Http404("no such account")
    user = None if name == actors.HUB_ACTOR_NAME else _actor_user(name)
    url = actors.actor_url(user)
    return _as_json({"subject": f"acct:{name}@{actors.public_host()}", "aliases": [url], "links": [
        {"rel": "self", "type": actors.ACTIVITY_JSON, "href": url},
        {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
         "href": actors.page_url(user)}]}, content_type=JRD)


@require_GET
def nodeinfo_discovery(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                                    "href": actors.absolute("/nodeinfo/2.1")}]})


@require_GET
def nodeinfo(request: HttpRequest) -> HttpResponse:
    return JsonResponse(selectors.nodeinfo_document(), content_type=(
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'))


# --- the admin page ------------------------------------------------------------------------------------


class CommaList(forms.CharField):
    """A comma-separated list (namespaces, licenses); blank is the empty list."""

    def to_python(self, value: str | None) -> list[str]:
        return [item.strip() for item in (value or "").split(",") if item.strip()]

    def prepare_value(self, value: object) -> str:
        return ", ".join(value) if isinstance(value, list) else str(value or "")


class PolicyForm(forms.Form):
    mode = forms.ChoiceField(choices=PeerMode.choices)
    review = forms.BooleanField(required=False, label="Review received items before publishing them")
    takedowns = forms.ChoiceField(choices=TakedownPolicy.choices)
    namespaces_allow = CommaList(required=False, max_length=2000, label="Only these namespaces (comma-separated)")
    namespaces_block = CommaList(required=False, max_length=2000, label="Not these namespaces")
    licenses = CommaList(required=False, max_length=2000, label="Only these licenses")
    max_bytes = forms.IntegerField(required=False, min_value=0, label="Largest item (bytes)")


def _admin_only(request: HttpRequest) -> None:
    if not request.user.is_superuser:
        raise PermissionDenied("hub administrators only")


@login_required
def peers_page(request: HttpRequest) -> HttpResponse:
    _admin_only(request)
    peers = [(peer, PolicyForm(initial={name: getattr(peer, name) for name in PolicyForm.base_fields},
                               prefix=f"peer{peer.pk}")) for peer in selectors.peers_all()]
    return render(request, "federation/peers.html", {
        "peers": peers, "follows": selectors.follows_all(), "hub_actor": actors.actor_url(None),
        "handle": f"{actors.HUB_ACTOR_NAME}@{actors.public_host()}"})


@login_required
@require_POST
def peer_policy(request: HttpRequest, peer_id: int) -> HttpResponse:
    _admin_only(request)
    peer = get_object_or_404(selectors.peers_all(), pk=peer_id)
    form = PolicyForm(request.POST, prefix=f"peer{peer.pk}")
    if form.is_valid():
        services.peer_update(peer=peer, changes=form.cleaned_data)
        messages.success(request, f"The policy for {peer.base_url} is saved.")
    else:
        messages.error(request, "; ".join(f"{form.fields[name].label or name}: {' '.join(errors)}"
                                          for name, errors in form.errors.items()))
    return redirect("federation-peers")


@login_required
@require_POST
def peers_action(request: HttpRequest, action: str) -> HttpResponse:
    """follow / unfollow / block / unblock, from the forms of the page."""
    _admin_only(request)
    if action not in ("follow", "unfollow", "block", "unblock"):
        raise Http404("no such action")
    url = request.POST.get("url", "").strip()
    try:
        if action == "follow":
            follow = services.follow_create(url=url, by=request.user)
            messages.success(request, f"Following {follow.actor_url}: {follow.get_state_display().lower()}.")
        elif action == "unfollow":
            follow = get_object_or_404(selectors.follows_all(), pk=request.POST.get("follow", "0") or 0)
            services.follow_delete(follow=follow)
            messages.success(request, f"Unfollowed {follow.actor_url}.")
        else:
            peer = services.peer_block(url=url, blocked=action == "block")
            messages.success(request, f"{peer.base_url} is {peer.get_state_display().lower()}.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("federation-peers")

