"""Cards are user content: render Markdown, then keep only safe tags and attributes."""

from __future__ import annotations

import bleach
import markdown as md
from django.utils.safestring import SafeString, mark_safe

from workers.engine.cards import parse_card
from workers.engine.errors import EngineInputError

ALLOWED_TAGS = sorted(bleach.sanitizer.ALLOWED_TAGS | {
    "p", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
    "img", "span", "div", "dl", "dt", "dd", "sup", "sub",
})
ALLOWED_ATTRIBUTES = {"a": ["href", "title", "rel"], "img": ["src", "alt", "title"], "code": ["class"],
                      "th": ["align"], "td": ["align"]}
ALLOWED_PROTOCOLS = ["http", "https", "mailto"]


def render_markdown(text: str) -> SafeString:
    """A card's Markdown body (front matter removed) as sanitized HTML."""
    try:
        body = parse_card(text).body
    except EngineInputError:
        body = text  # a card with broken front matter still shows; validation names the problem
    html = md.markdown(body, extensions=["fenced_code", "tables"])
    clean = bleach.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, protocols=ALLOWED_PROTOCOLS,
                         strip=True)
    return mark_safe(bleach.linkify(clean, callbacks=[bleach.callbacks.nofollow]))  # noqa: S308 - sanitized above
