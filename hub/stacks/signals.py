"""Events of stack builds.

sender=StackBuild, build_id=<int>: a build waits for a worker (new, retried, or left by a dead worker); sent
inside the transaction that queued it, and the stacks' tasks enqueue the build when it commits.
sender=StackBuild, build=<StackBuild>: a stack's artifact is ready (sent after commit).
"""

from django.dispatch import Signal

stack_queued = Signal()
stack_ready = Signal()
