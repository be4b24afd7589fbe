"""Hugging Face Hub-compatible routes (see hub/hfcompat)."""

urlpatterns: list = []
