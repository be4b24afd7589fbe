"""Moderation listens to the catalog: a version that passed validation enters the review queue.

Sent inside the transaction that recorded the validation, so the version and its queue item commit together.
"""

from __future__ import annotations

from hub.catalog.models import Version
from hub.moderation.services.review import review_item_open


def on_version_passed_validation(sender: type, version: Version, **kwargs: object) -> None:
    review_item_open(version=version)
