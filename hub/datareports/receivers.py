"""The catalog's events, heard: a dataset version that passed validation gets its data report. The signal is sent
inside the validation's transaction, so the report row commits with it and its task is enqueued on that commit.
A failure to schedule is logged, never raised into the validation."""

from __future__ import annotations

import logging

from hub.catalog.models import Version
from hub.datareports.services import data_report_schedule

log = logging.getLogger(__name__)


def on_version_validated(sender: type, version: Version, **kwargs: object) -> None:
    try:
        data_report_schedule(version=version)
    except Exception:
        log.exception("could not schedule the data report of %s", version)
