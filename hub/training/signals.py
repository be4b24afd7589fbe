"""Events of training jobs.

sender=TrainingJob, job_id=<int>: a job waits for a worker (new, retried, or left by a dead worker); sent inside
the transaction that queued it, and the training tasks enqueue it when it commits.
"""

from django.dispatch import Signal

training_queued = Signal()
