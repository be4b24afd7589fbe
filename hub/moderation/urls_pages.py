"""Page routes of the moderation app."""

urlpatterns: list = []
