"""/api/v1/ routes of the stacks app."""

urlpatterns: list = []
