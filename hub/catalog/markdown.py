"""Cards are user content: render Markdown, then keep only safe tags and attributes (nh3, the maintained
Rust sanitizer; bleach is deprecated)."""

from __future__ import annotations

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe
from pygments.token import STANDARD_TYPES

from workers.engine.cards import parse_card
from workers.engine.errors import EngineInputError

ALLOWED_TAGS = {
    "a", "abbr", "acronym", "b", "blockquote", "code", "em", "i", "li", "ol", "strong", "ul",
    "p", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
    "img", "span", "div", "dl", "dt", "dd", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "code": {"class"},
                      "th": {"align"}, "td": {"align"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}
# Code blocks are highlighted by Pygments (Markdown's codehilite): only its own class names survive sanitizing.
ALLOWED_CLASSES = {"div": {"highlight"}, "span": {name for name in STANDARD_TYPES.values() if name}}


def render_markdown(text: str) -> SafeString:
    """A card's Markdown body (front matter removed) as sanitized HTML; every link gets rel="nofollow"."""
    try:
        body = parse_card(text).body
    except EngineInputError:
        body = text  # a card with broken front matter still shows; validation names the problem
    html = md.markdown(body, extensions=["fenced_code", "tables", "codehilite"],
                       extension_configs={"codehilite": {"guess_lang": False, "css_class": "highlight"}})
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=ALLOWED_URL_SCHEMES,
                      link_rel="nofollow noopener noreferrer", allowed_classes=ALLOWED_CLASSES)
    return mark_safe(clean)  # noqa: S308 - sanitized above
