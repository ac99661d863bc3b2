"""An OPML 2.0 subscription list, so a reader imports every feed in one step."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree

# (text, xmlUrl, htmlUrl) of one feed; a group is a titled list of them.
FeedLink = tuple[str, str, str]


def _feed_outline(parent: ElementTree.Element, feed: FeedLink) -> None:
    text, xml_url, html_url = feed
    ElementTree.SubElement(
        parent, "outline", type="rss", text=text, title=text, xmlUrl=xml_url, htmlUrl=html_url
    )


def render_opml(
    title: str,
    groups: Sequence[tuple[str, Sequence[FeedLink]]],
    everything: FeedLink | None = None,
) -> bytes:
    """OPML 2.0 bytes: the all-articles feed first, then one outline per group, each holding
    its RSS feeds."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    body = ElementTree.SubElement(root, "body")
    if everything is not None:
        _feed_outline(body, everything)
    for group_title, feeds in groups:
        group = ElementTree.SubElement(body, "outline", text=group_title, title=group_title)
        for feed in feeds:
            _feed_outline(group, feed)
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
