"""Events other apps build on without the catalog knowing them: moderation opens review items, evals
schedule runs, the catalog's own tasks enqueue validation.

`version_published` is sent after the transaction that made it true commits, so receivers may enqueue
work; the others are sent inside it, so what receivers write commits (or rolls back) with it.
"""

from django.dispatch import Signal

# sender=Version, version=<Version>: a version became published (on upload, by approval, or re-published).
version_published = Signal()
# sender=Version, version_id=<int>: a version was recorded in state `uploaded` (or needs validating again).
version_uploaded = Signal()
# sender=Version, version=<Version>: a version passed validation (pending review, or published on upload).
version_passed_validation = Signal()
