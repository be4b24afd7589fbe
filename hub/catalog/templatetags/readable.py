"""The pages' filters for values people read: numbers, sizes, metric names, and any stored JSON as a list or table.

A builtin of the template engine (settings.TEMPLATES), so every template has them without `{% load %}`; the
formatting itself lives in `hub.core.formatting`, which the SVG charts share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from hub.core import formatting

register = template.Library()
NESTED_ROWS = 12  # a stored list or mapping shows this many entries, then "and N more"
WORDS = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")  # snake_case field names, shown as words
PAGE_PARAMS = {"page", "rows"}  # positions in a list: changing any other parameter starts it again


@register.filter
def number(value: float | int | None) -> str:
    return formatting.readable_number(value)


@register.filter
def signed(value: float | None) -> str:
    return formatting.signed_number(value)


@register.filter(name="bytes")
def bytes_(value: int | None) -> str:
    return formatting.readable_bytes(value)


@register.filter
def signed_bytes(change: int | None) -> str:
    """A size difference: "+1.2 kB", "−300 bytes" (a real minus sign), "—" when there is none to show."""
    if not change:
        return "—"
    return ("+" if change > 0 else "−") + formatting.readable_bytes(abs(change))


@register.filter
def metric(name: str) -> str:
    return formatting.metric_label(name)


@register.filter
def label(key: str) -> str:
    """A stored key as words: `delta_norms` → "Delta norms"."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def readable(value: Any) -> SafeString:
    """Any JSON value as HTML a person reads: yes/no, a number, a comma list, a nested key/value table."""
    return _render(value, depth=0)


def _render(value: Any, depth: int) -> SafeString:
    if value is None or value == "" or value == [] or value == {}:
        return mark_safe('<span class="muted">—</span>')
    if isinstance(value, bool):
        return SafeString("yes" if value else "no")
    if isinstance(value, int | float):
        return format_html("{}", formatting.readable_number(value))
    if isinstance(value, str):
        return format_html("{}", value)
    if isinstance(value, Mapping):
        items = list(value.items())
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>",
                                ((_key(k), _render(v, depth + 1)) for k, v in items[:NESTED_ROWS]))
        more = _more(len(items))
        return format_html('<div class="table-scroll"><table class="kv">{}</table></div>{}', rows, more)
    if isinstance(value, list | tuple):
        if all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            shown = ", ".join(v if isinstance(v, str) else formatting.readable_number(v) for v in value[:NESTED_ROWS])
            return format_html("{}{}", shown, _more(len(value)))
        items = format_html_join("", "<li>{}</li>", ((_render(v, depth + 1),) for v in value[:NESTED_ROWS]))
        return format_html('<ul class="plain">{}</ul>{}', items, _more(len(value)))
    return format_html("{}", str(value))


def _key(key: Any) -> SafeString:
    """A stored field name as words; anything else (a module name, a file) as it is, in code type."""
    text = str(key)
    return format_html("{}", label(text)) if WORDS.fullmatch(text) else format_html("<code>{}</code>", text)


def _more(count: int) -> SafeString:
    return format_html(' <span class="muted small">and {} more</span>', count - NESTED_ROWS) if count > NESTED_ROWS \
        else SafeString("")


@register.simple_tag(takes_context=True)
def page_sections(context: template.Context, folder: str) -> SafeString:
    """Every template in templates/<folder>/ in name order: another app adds a section to a page by adding a file
    there (the adapter page's aside, the dataset page), without editing the page's template."""
    root = Path(settings.BASE_DIR) / "templates"
    names = sorted(p.relative_to(root).as_posix() for p in (root / folder).glob("*.html"))
    flat = context.flatten()
    return mark_safe("".join(render_to_string(name, flat, request=flat.get("request")) for name in names))  # noqa: S308


@register.filter
def get_item(mapping: Mapping[str, Any], key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None


@register.simple_tag(takes_context=True)
def url_with(context: template.Context, name: str, value: Any) -> str:
    """The current query string with `name` set to `value` (back to page 1 unless `name` is the page)."""
    params = context["request"].GET.copy()
    params[name] = str(value)
    for position in PAGE_PARAMS - {name}:
        params.pop(position, None)
    return "?" + params.urlencode()


@register.simple_tag(takes_context=True)
def url_without(context: template.Context, name: str) -> str:
    params = context["request"].GET.copy()
    for key in PAGE_PARAMS | {name}:
        params.pop(key, None)
    return "?" + params.urlencode()


@dataclass(frozen=True)
class VersionChanges:
    """What changed from the version before (`earlier`, its number), in words when printed."""

    earlier: int
    text: str

    def __str__(self) -> str:
        return self.text


@register.simple_tag
def version_changes(version: Any, versions: list[Any]) -> VersionChanges | None:
    """What changed from the version before `version` in `versions` (newest first, files prefetched)."""
    earlier = next((v for v in versions if v.number < version.number), None)
    if earlier is None:
        return None
    now = {f.path: f.blob_id for f in version.files.all()}
    before = {f.path: f.blob_id for f in earlier.files.all()}
    parts = []
    for word, paths in (("changed", [p for p in now if p in before and now[p] != before[p]]),
                        ("added", [p for p in now if p not in before]),
                        ("removed", [p for p in before if p not in now])):
        if paths:
            parts.append(f"{word} {', '.join(sorted(paths)[:4])}" + (f" and {len(paths) - 4} more" if len(paths) > 4
                                                                     else ""))
    return VersionChanges(earlier.number, "; ".join(parts) or f"same files as v{earlier.number}")
