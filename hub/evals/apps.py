from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "hub.evals"
    label = "evals"
