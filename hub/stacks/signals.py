"""sender=StackBuild, build=<StackBuild>: a stack's artifact is ready (sent after commit)."""

from django.dispatch import Signal

stack_ready = Signal()
