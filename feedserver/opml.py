"""An OPML 2.0 subscription list, so a reader imports every feed in one step."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree

# (text, xmlUrl, htmlUrl) of one feed; a group is a titled list of them.
FeedLink = tuple[str, str, str]


def render_opml(title: str, groups: Sequence[tuple[str, Sequence[FeedLink]]]) -> bytes:
    """OPML 2.0 bytes with one outline per group, each holding its RSS feeds."""
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = title
    body = ElementTree.SubElement(root, "body")
    for group_title, feeds in groups:
        group = ElementTree.SubElement(body, "outline", text=group_title, title=group_title)
        for text, xml_url, html_url in feeds:
            ElementTree.SubElement(
                group,
                "outline",
                type="rss",
                text=text,
                title=text,
                xmlUrl=xml_url,
                htmlUrl=html_url,
            )
    ElementTree.indent(root)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
