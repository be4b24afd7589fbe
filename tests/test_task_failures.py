"""The one way every app's task records a failure (hub.core.tasks.failures_recorded)."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from hub.core.tasks import TaskFailure, failures_recorded, task_failure
from workers.engine.errors import EngineInputError, VerificationError


@pytest.mark.parametrize(("error", "reason", "is_bug"), [
    (SoftTimeLimitExceeded(), "timed out after 90 s", False),
    (EngineInputError("must be finite", field="adapters[0].weight"), "adapters[0].weight: must be finite", False),
    (VerificationError("the f16 GGUF does not match"), "verification failed: the f16 GGUF does not match", False),
    (KeyError("rank"), "internal error (KeyError): 'rank'", True),
])
def test_each_kind_of_failure_has_one_wording(error, reason, is_bug):
    failure = task_failure(error, time_limit_seconds=90)
    assert (failure.reason, failure.is_bug, failure.error) == (reason, is_bug, error)


def test_a_failure_is_recorded_with_its_details_and_the_caller_told():
    recorded: list[TaskFailure] = []
    with failures_recorded(recorded.append, name="build x", time_limit_seconds=60) as outcome:
        raise VerificationError("gate", details={"ppl_ratio": 3.1})
    assert outcome.failed and recorded[0].details == {"ppl_ratio": 3.1}
    with failures_recorded(recorded.append, name="build y", time_limit_seconds=60) as fine:
        pass
    assert not fine.failed and len(recorded) == 1


def test_a_bug_is_recorded_then_raised_unless_the_task_keeps_it_as_its_result():
    recorded: list[TaskFailure] = []
    with pytest.raises(ZeroDivisionError), failures_recorded(recorded.append, name="run", time_limit_seconds=1):
        1 / 0  # noqa: B018 - the bug
    assert recorded[0].reason == "internal error (ZeroDivisionError): division by zero"
    with failures_recorded(recorded.append, name="eval", reraise_bugs=False) as outcome:
        1 / 0  # noqa: B018
    assert outcome.failed and len(recorded) == 2
