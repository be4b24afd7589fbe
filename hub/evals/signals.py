"""sender=EvalRun, run_id=<int>: a run waits for a worker (new, re-run, or left by a dead worker); sent inside the
transaction that queued it, and the evals' tasks enqueue it when that commits."""

from django.dispatch import Signal

eval_run_queued = Signal()
