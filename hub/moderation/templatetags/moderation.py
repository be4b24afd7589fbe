"""Template tags for pages outside moderation: the notifications count and a version's review outcome."""

from django import template

from hub.catalog.models import Version
from hub.moderation import selectors
from hub.moderation.models import ReviewItem

register = template.Library()


@register.simple_tag
def unread_notifications(user) -> int:
    return selectors.notifications_unread_count(user) if user.is_authenticated else 0


@register.simple_tag
def review_outcome(version: Version) -> ReviewItem | None:
    return selectors.review_outcome(version)
