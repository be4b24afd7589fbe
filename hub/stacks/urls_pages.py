"""Page routes of the stacks app."""

urlpatterns: list = []
