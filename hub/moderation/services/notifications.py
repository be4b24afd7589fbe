"""Notifications: an entry in the user's list, and an email once the transaction commits."""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from hub.accounts.models import User
from hub.moderation.models import Notification

log = logging.getLogger(__name__)


def notification_send(*, user: User, subject: str, message: str, url: str = "") -> Notification:
    """An entry in the user's notifications list, and an email once the transaction commits."""
    notification = Notification.objects.create(user=user, subject=subject, message=message, url=url)
    if user.email:
        transaction.on_commit(lambda: _email(user.email, subject, message, url))
    return notification


def _email(address: str, subject: str, message: str, url: str) -> None:
    link = f"\n\n{settings.SITE_URL}{url}" if url else ""
    try:
        send_mail(f"[nomoat] {subject}", message + link, None, [address])
    except (smtplib.SMTPException, OSError):
        # The decision is committed and the notification stored; a mail server outage must not undo either.
        log.exception("could not email %s about %r", address, subject)


def notifications_mark_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
