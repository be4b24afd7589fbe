"""Profile page: the user's API tokens (create shows the token once; revoke)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from hub.accounts.models import TokenScope
from hub.accounts.selectors import api_tokens_of
from hub.accounts.services import api_token_create, api_token_revoke
from hub.catalog.models import Repository


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        new_token = api_token_create(user=request.user, **form.cleaned_data).raw
        form = TokenForm()
    return render(request, "accounts/profile.html", {
        "form": form, "tokens": api_tokens_of(request.user), "new_token": new_token,
        "repositories": Repository.objects.filter(owner=request.user).order_by("kind", "name"),
    })


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(api_tokens_of(request.user), pk=token_id)
    api_token_revoke(token=token)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("profile")
