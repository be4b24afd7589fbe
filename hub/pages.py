"""URLs of the server-rendered pages."""

from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from hub.accounts import views as accounts_views
from hub.catalog import views as catalog_views

REPO = "<str:owner>/<str:name>"
urlpatterns = [
    path("", catalog_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="accounts/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", accounts_views.profile, name="profile"),
    path("profile/tokens/<int:token_id>/revoke", accounts_views.token_revoke, name="token-revoke"),
    path("signup/", accounts_views.sign_up, name="signup"),
    path("signup/confirm/<str:uidb64>/<str:token>", accounts_views.sign_up_confirm, name="signup-confirm"),
    path("users/<str:username>", catalog_views.user_page, name="user-page"),
    # Some clients ask for /favicon.ico whatever the page links: send them to the same icon.
    path("favicon.ico", lambda request: redirect(static("favicon.svg"), permanent=True), name="favicon"),
    path(f"models/{REPO}", catalog_views.base_model_detail, name="base-model"),
]
for kind in ("adapter", "dataset"):
    k = {"kind": kind}
    urlpatterns += [
        path(f"{kind}s/", catalog_views.browse, k, name=f"{kind}-browse"),
        path(f"upload/{kind}", catalog_views.upload, k, name=f"{kind}-upload"),
        path(f"{kind}s/{REPO}/v/<int:number>/status", catalog_views.version_status, k, name=f"{kind}-version-status"),
        path(f"{kind}s/{REPO}", catalog_views.repository_detail, k, name=f"{kind}-page"),
        path(f"{kind}s/{REPO}/v/<int:number>", catalog_views.repository_detail, k, name=f"{kind}-version-page"),
        path(f"{kind}s/{REPO}/v/<int:number>/files/<path:path>", catalog_views.version_file, k,
             name=f"{kind}-file-page"),
        path(f"{kind}s/{REPO}/diff/<int:a>..<int:b>", catalog_views.version_diff, k, name=f"{kind}-version-diff"),
    ]

for app in ("stacks", "evals", "moderation", "training", "datareports"):
    urlpatterns.append(path("", include(f"hub.{app}.urls_pages")))
