from django.apps import AppConfig


class HfcompatConfig(AppConfig):
    name = "hub.hfcompat"
    label = "hfcompat"
