"""Account pages: sign-up with email confirmation, public user profiles, settings (the user's API tokens)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.tokens import default_token_generator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.http import require_POST

from hub.accounts.backends import token_creation_check
from hub.accounts.models import TokenScope, User
from hub.accounts.selectors import api_tokens_of
from hub.accounts.services import (
    api_token_create,
    api_token_revoke,
    sign_up_confirmation_send,
    user_confirm_email,
    user_sign_up,
)
from hub.core.throttling import client_address, rate_check


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)


class SignUpForm(UserCreationForm):
    """Django's own checks (username rules, the password validators, both passwords equal) plus a required email."""

    email = forms.EmailField(help_text="We send a link there to confirm the account.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email address already exists: log in instead.")
        return email


def sign_up(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("user-page", username=request.user.username)
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        rate_check("signups_per_address", client_address(request), what="sign-ups from this address")
    if request.method == "POST" and form.is_valid():
        user = user_sign_up(username=form.cleaned_data["username"], email=form.cleaned_data["email"],
                            password=form.cleaned_data["password1"])
        link = reverse("signup-confirm", kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                                                 "token": default_token_generator.make_token(user)})
        sign_up_confirmation_send(user=user, confirm_url=request.build_absolute_uri(link))
        return render(request, "accounts/signup_sent.html", {"email": user.email})
    return render(request, "accounts/signup.html", {"form": form})


def sign_up_confirm(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link in the email: activates the account and signs it in (a used or forged link is refused)."""
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or user.is_active or not default_token_generator.check_token(user, token):
        return render(request, "error.html", {"title": "This link does not work",
                                              "exception": "The confirmation link is invalid or was already used. "
                                                           "Log in, or sign up again."}, status=400)
    user_confirm_email(user=user)
    login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])  # no password was checked: name the backend
    messages.success(request, f"Welcome, {user.username}: your account is confirmed.")
    return redirect("user-page", username=user.username)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        token_creation_check(request, request.user)  # the same limit as POST /api/v1/auth/tokens
        new_token = api_token_create(user=request.user, **form.cleaned_data).raw
        form = TokenForm()
    return render(request, "accounts/profile.html", {
        "form": form, "tokens": api_tokens_of(request.user), "new_token": new_token,
    })


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(api_tokens_of(request.user), pk=token_id)
    api_token_revoke(token=token)
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("profile")
