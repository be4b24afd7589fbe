"""Events of stack builds.

sender=StackBuild, build_id=<int>: a build waits for a worker (new, retried, or left by a dead worker); sent
inside the transaction that queued it, and the stacks' tasks enqueue the build when it commits.
sender=StackBuild, build=<StackBuild>: a stack's artifact is ready (sent after commit).
sender=StackBuild, build=<StackBuild>, files={path: Blob}: the artifact's files are stored, not yet recorded; each
receiver returns more files for the artifact ({path: Blob}, e.g. provenance's model.sig), sent in the build's worker.
"""

from django.dispatch import Signal

stack_queued = Signal()
stack_ready = Signal()
stack_artifact_stored = Signal()
