"""The ASGI entry point `make run` and the deploy notes serve: gunicorn's asgi worker reads each request's headers
and body on its event loop (Django spools the body to a temporary file before a view runs), so a client that sends
slowly holds a coroutine, never one of the threads that run views."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
application = get_asgi_application()
