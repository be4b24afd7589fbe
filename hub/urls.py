from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("hub.api.urls")),
    # The Hugging Face Hub-compatible routes (api/models/..., api/datasets/..., resolve/...) live at the root, as
    # huggingface_hub expects; they are listed before the pages so their patterns win.
    path("", include("hub.hfcompat.urls")),
    # The OCI distribution pull API (/v2/...), where ORAS and Ollama clients look for a registry.
    path("", include("hub.oci.urls")),
    # ActivityPub actors, inboxes and outboxes (/federation/...), WebFinger and NodeInfo (/.well-known/...).
    path("", include("hub.federation.urls_pages")),
    path("", include("hub.pages")),
]

# A path no route matches is answered in the API's error format under /api/v1/, with the site's page elsewhere.
handler404 = "hub.api.errors.page_not_found"
# What an exception no view or middleware answered becomes: 503 + Retry-After for an outage, even one raised outside
# any view (a session saved in SessionMiddleware's process_response), else templates/500.html with no context.
handler500 = "hub.middleware.server_error"
