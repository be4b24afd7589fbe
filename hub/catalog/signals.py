"""Events other apps build on without the catalog knowing them (evals listen, for one).

Both are sent after the transaction that made them true commits, so receivers may enqueue work.
"""

from django.dispatch import Signal

# sender=Version, version=<Version>: a version became published (on upload, by approval, or re-published).
version_published = Signal()
