"""Banning an uploader: the account is deactivated and everything they published is unpublished."""

from __future__ import annotations

from hub.accounts.models import User
from hub.accounts.services import user_ban
from hub.audit.services import audit_record
from hub.moderation.models import TakedownKind
from hub.moderation.services.refusals import ModerationError
from hub.moderation.services.takedowns import withdraw
from hub.moderation.targets import TARGET_TYPES, Target


def refuse_ban(user: User | None, moderator: User) -> None:
    """Refuse to ban nobody, oneself, or a moderator or admin."""
    if user is None:
        raise ModerationError("no_uploader", "this item has no uploader to ban")
    if user.pk == moderator.pk or user.is_moderator:
        raise ModerationError("cannot_ban_moderator", "moderators and admins cannot be banned here; an admin can "
                                                      "change their role first", status=403)


def uploader_ban(*, user: User, moderator: User, reason: str) -> list[Target]:
    """Ban an uploader: the account is deactivated and everything they published is unpublished (files kept,
    so each takedown can be lifted). Returns what was unpublished."""
    refuse_ban(user, moderator)
    user_ban(user=user, by=moderator, reason=reason)
    withdrawn = [t for targets in TARGET_TYPES.values() for t in targets.published_by(user)]
    for target in withdrawn:
        withdraw(target, kind=TakedownKind.UNPUBLISHED, by=moderator, reason=f"uploader banned: {reason}")
        audit_record(actor=moderator, action="takedown.unpublish", target_kind=target.kind, target_id=target.id,
                     target_label=target.label, before={"published": True}, after={"published": False},
                     reason=f"uploader banned: {reason}")
    return withdrawn
