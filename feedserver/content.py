"""An article's Markdown body as safe HTML: rendered with markdown-it-py (CommonMark, tables
and strikethrough), then cleaned by nh3 against an allow-list, so that no script, event
handler or `javascript:` URL reaches a reader or a page, and relative links and images point
at the article's own site."""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

# What an article body may use: text structure, links, images and tables. Every tag here is
# one the W3C feed validator accepts in feed content.
ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code"),
        *("em", "strong", "del", "s", "sup", "sub", "small", "mark", "abbr", "q", "cite"),
        *("kbd", "span", "ul", "ol", "li", "dl", "dt", "dd", "a", "img", "figure"),
        *("figcaption", "table", "thead", "tbody", "tr", "th", "td"),
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Elements dropped together with what they hold (the rest keep their text).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "object", "noscript"})
# Characters XML 1.0 cannot carry: a feed holding one is not well-formed.
_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Raw HTML in the Markdown is allowed through to the sanitizer, as Markdown writers expect.
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def body_html(markdown: str, base_url: str) -> str:
    """The Markdown text as sanitized HTML, relative URLs resolved against base_url; "" when
    the text is blank."""
    text = _XML_UNSAFE.sub("", markdown)
    if not text.strip():
        return ""
    cleaned = nh3.clean(
        _MARKDOWN.render(text),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative=("rewrite_with_base", base_url),
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()
    # RSS carries content in a CDATA section, which "]]>" would end: in text nh3 writes ">"
    # as "&gt;" already; in an attribute value the reference means the same character.
    return cleaned.replace("]]>", "]]&gt;")
