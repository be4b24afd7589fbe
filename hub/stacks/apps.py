from django.apps import AppConfig


class StacksConfig(AppConfig):
    name = "hub.stacks"
    label = "stacks"
