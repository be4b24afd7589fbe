"""The ASGI entry point `make run` and the deploy notes serve: gunicorn's asgi worker reads each request's headers
and body on its event loop (Django spools the body to a temporary file before a view runs), so a client that sends
slowly holds a coroutine, never one of the threads that run views. A stored anonymous read is answered before
Django's handler runs (hub/core/anoncache.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
django_application = get_asgi_application()

from hub.core.anoncache import AnonymousReadCacheApp  # noqa: E402 - needs the apps that get_asgi_application loads

application = AnonymousReadCacheApp(django_application)
