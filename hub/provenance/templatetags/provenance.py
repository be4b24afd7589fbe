"""The swarm links of a file on a page: the same torrent, Metalink and magnet as its API entry (one home:
`hub.provenance.api.file_links`)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hub.catalog.models import Blob
from hub.provenance.api import file_links

register = template.Library()

TORRENT_TITLE = "BitTorrent v1+v2 torrent; its web seeds are every place that serves this file"
METALINK_TITLE = "Metalink 4 for aria2 and download managers: every source, with sha-256 per piece"
MAGNET_TITLE = "Magnet link (BitTorrent v1 and v2 info hashes, with this hub's download as a web seed)"


@register.simple_tag(takes_context=True)
def swarm_links(context: template.Context, blob: Blob, download_url: str) -> SafeString:
    """`torrent · meta4 · magnet` for a file whose bytes are `blob`, served by this hub at `download_url`."""
    links = file_links({"sha256": blob.pk, "url": download_url}, blob, context.get("request"))
    html = format_html('<a href="{}" title="{}">torrent</a> · <a href="{}" title="{}">meta4</a>',
                       links["torrent"], TORRENT_TITLE, links["metalink"], METALINK_TITLE)
    if "magnet" in links:
        html += format_html(' · <a href="{}" title="{}">magnet</a>', links["magnet"], MAGNET_TITLE)
    return html
