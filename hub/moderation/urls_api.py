"""/api/v1/ routes of the moderation app."""

urlpatterns: list = []
