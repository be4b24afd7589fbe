"""The error every moderation write refuses with, and the input checks they share."""

from __future__ import annotations

from hub.accounts.models import User
from hub.core.errors import ServiceError
from hub.moderation.targets import Target, TargetNotFound, target_get


class ModerationError(ServiceError):
    """A refused moderation request; `code` is stable (the API returns it), `message` is for people."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)


def target_found(kind: str, target_id: int, *, visible_to: User | None = None) -> Target:
    """The target, or a 404 refusal (one the caller may not see answers like a missing one)."""
    try:
        return target_get(kind, target_id, visible_to=visible_to)
    except TargetNotFound as exc:
        raise ModerationError("not_found", str(exc), status=404) from None


def required_text(text: str, what: str) -> str:
    """`text` stripped; refused when empty (`<what>_required`)."""
    text = text.strip()
    if not text:
        raise ModerationError(f"{what}_required", f"a {what} is required")
    return text
