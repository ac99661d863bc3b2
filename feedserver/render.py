"""Feed documents to bytes: RSS 2.0 and Atom 1.0 (with feedgen) and JSON Feed 1.1.

The only module that imports feedgen. Deterministic: the same document renders to the same
bytes in every process, so every date feedgen would default to now() is set explicitly."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator

from .catalog import PROVIDER, TOPIC, Names
from .fragments import FragmentMemo
from .freshness import Freshness
from .jsontext import json_bytes, utc_time
from .models import Article, Related
from .urls import Urls

GENERATOR = "feedserver"
ATOM_NS = "http://www.w3.org/2005/Atom"
SYNDICATION_NS = "http://purl.org/rss/1.0/modules/syndication/"


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """Everything one feed response shows, with every URL already absolute."""

    title: str
    description: str
    html_url: str  # the feed's HTML page
    self_url: str  # the exact URL the feed is served at, query included
    feed_id: str  # a stable identifier: the feed's URL without a query
    language: str
    updated: datetime
    entries: Sequence[Article]
    urls: Urls  # the site's URLs, for the links of each entry
    freshness: Freshness  # how often readers should poll: RSS ttl and sy:*
    publisher: str  # the site's title: the feed's author
    # RFC 5005 paging and other feed-level links: rel -> absolute URL.
    links: dict[str, str] = field(default_factory=dict)
    image_url: str = ""  # the feed's icon and logo; none when empty
    image_size: int = 0  # its width and height in pixels (square); 0 when unknown
    # The catalog's names of topics and providers: one spelling each, whatever the article's.
    names: Names = field(default_factory=Names)
    # Where each entry's rendered bytes are kept for the other feeds of the same catalog
    # (the export's; none in a serving process): the same bytes either way.
    memo: FragmentMemo | None = None

    def provider_feed_url(self, article: Article, extension: str) -> str | None:
        """The URL of the feed of the article's provider, or None when it has none."""
        if article.provider is None:
            return None
        return self.urls.feed_of(PROVIDER, article.provider.key, extension)

    def topic_url(self, key: str) -> str:
        """The HTML page of a topic."""
        return self.urls.page_of(TOPIC, key)


def entry_html(article: Article, names: Names) -> str:
    """The entry's HTML content: lead image, the body (sanitized when the seed was read) or
    else the excerpt, a link to the article and the related coverage, all text escaped.
    (f-strings with html.escape: markupsafe's format() costs a third of a feed's first
    render.)"""
    parts: list[str] = []
    image = article.lead_image
    if image is not None:
        size = f' width="{image.width}" height="{image.height}"' if image.width else ""
        alt = _escape(image.title or article.title)
        parts.append(f'<p><img src="{_escape(image.url)}" alt="{alt}"{size}></p>')
    if article.body_html:
        parts.append(article.body_html)
    elif article.excerpt:
        parts.append(f"<p>{_escape(article.excerpt)}</p>")
    provider = article.provider
    source = f" at {_escape(names.provider(provider))}" if provider is not None else ""
    parts.append(f'<p><a href="{_escape(article.url)}">Read the full article{source}</a></p>')
    if article.related:
        items = "".join(
            f'<li><a href="{_escape(r.url)}">{_escape(r.title)}</a>'
            + (f" ({_escape(r.provider_name)})" if r.provider_name else "")
            + "</li>"
            for r in article.related
        )
        parts.append(f"<p>Related coverage:</p><ul>{items}</ul>")
    return "".join(parts)


def _entry_html(document: FeedDocument, article: Article) -> str:
    """entry_html, made once per catalog where the document has a memo."""
    if document.memo is None:
        return entry_html(article, document.names)
    key = ("html", document.urls.base)
    made: str = document.memo.get(
        document.names, key, article, lambda: entry_html(article, document.names)
    )
    return made


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


class _ChannelExtras(BaseExtension):  # type: ignore[misc]
    """Adds to an RSS channel what feedgen does not: RFC 5005 paging links (and any other
    feed links) as atom:link elements, which feedgen only does for rel="self", and the
    syndication module's update hints (feedgen's own extension misspells them)."""

    def __init__(self) -> None:
        self.links: dict[str, str] = {}
        self.freshness: Freshness | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM_NS, "sy": SYNDICATION_NS}

    def extend_rss(self, rss_feed: Any) -> Any:
        channel = rss_feed[0]
        position = _after_self_link(channel)
        for rel, href in self.links.items():
            element = channel.makeelement(f"{{{ATOM_NS}}}link", {"rel": rel, "href": href})
            channel.insert(position, element)
            position += 1
        if self.freshness is not None:
            hints = {
                "updatePeriod": self.freshness.update_period,
                "updateFrequency": str(self.freshness.update_frequency),
            }
            for name, value in hints.items():
                element = channel.makeelement(f"{{{SYNDICATION_NS}}}{name}", {})
                element.text = value
                channel.insert(position, element)
                position += 1
        return rss_feed


class _RelatedLinks(BaseEntryExtension):  # type: ignore[misc]
    """Adds an Atom entry's related coverage as <link rel="related"> elements (feedgen's own
    entry links lose every attribute but href)."""

    def __init__(self) -> None:
        self.related: Sequence[Related] = ()

    def extend_atom(self, entry: Any) -> Any:
        position = max((i + 1 for i, child in enumerate(entry) if child.tag == "link"), default=0)
        for related in self.related:
            attributes = {"rel": "related", "type": "text/html", "href": related.url}
            element = entry.makeelement("link", {**attributes, "title": related.title})
            entry.insert(position, element)
            position += 1
        return entry


def _after_self_link(channel: Any) -> int:
    for index, child in enumerate(channel):
        if child.tag == f"{{{ATOM_NS}}}link":
            return index + 1
    return len(channel)


def _feed_generator(document: FeedDocument, rss: bool) -> FeedGenerator:
    generator = FeedGenerator()
    generator.load_extension("media")
    generator.load_extension("dc")
    generator.register_extension("extras", _ChannelExtras, atom=False, rss=True)
    generator.register_extension("related", BaseExtension, _RelatedLinks, atom=True, rss=False)
    generator.id(document.feed_id)
    generator.title(document.title)
    generator.description(document.description)  # RSS description and Atom subtitle
    generator.language(document.language)
    generator.generator(GENERATOR)
    generator.link(href=document.self_url, rel="self")
    if not rss:
        # Atom needs an author for every entry; those without a provider inherit this one.
        generator.author({"name": document.publisher})
    if rss:
        generator.extras.links = dict(document.links)
        generator.extras.freshness = document.freshness
    else:
        for rel, href in document.links.items():
            generator.link(href=href, rel=rel)
    # RSS takes the last link added as the channel's <link>: the HTML page goes last.
    generator.link(href=document.html_url, rel="alternate", type="text/html")
    generator.updated(document.updated)
    generator.lastBuildDate(document.updated)
    generator.ttl(document.freshness.ttl_minutes)
    _add_image(generator, document, rss)
    for article in document.entries:
        _add_entry(generator, document, article, rss)
    return generator


def _add_image(generator: FeedGenerator, document: FeedDocument, rss: bool) -> None:
    """The feed's image: RSS <image> (whose title and link must repeat the channel's),
    Atom <icon> and <logo>."""
    if not document.image_url:
        return
    if rss:
        size = str(document.image_size) if document.image_size else None
        generator.image(
            document.image_url, document.title, document.html_url, width=size, height=size
        )
    else:
        generator.icon(document.image_url)
        generator.logo(document.image_url)


def _add_entry(
    generator: FeedGenerator, document: FeedDocument, article: Article, rss: bool
) -> None:
    entry = generator.add_entry(order="append")
    entry.id(article.url)
    entry.guid(article.url, permalink=True)
    entry.title(article.title)
    entry.link(href=article.url, rel="alternate", type="text/html")
    entry.published(article.published_at)
    entry.updated(article.published_at)
    if article.excerpt:
        # Readers take an RSS description as HTML: escaped, the excerpt shows as the text it
        # is. Atom's summary says so with type="html".
        entry.summary(html.escape(article.excerpt, quote=False), type="html")
    content = _entry_html(document, article)
    if content:
        entry.content(content, type="CDATA" if rss else "html")
    for topic in article.topics:
        # The topic's one display name is the term, as RSS shows it, in every entry alike.
        entry.category(term=document.names.topic(topic), scheme=document.topic_url(topic.key))
    if not rss:
        entry.related.related = article.related
    provider = article.provider
    if provider is not None:
        name = document.names.provider(provider)
        uri = f"https://{provider.domain}" if provider.domain else None
        author = {"name": name}
        if uri and not rss:
            author["uri"] = uri
        if not rss:
            entry.author(author)
        entry.dc.dc_creator(name)
        source_url = document.provider_feed_url(article, "rss" if rss else "atom")
        if source_url and rss:
            entry.source(url=source_url, title=name)
    image = article.lead_image
    if image is not None:
        size = {"width": str(image.width), "height": str(image.height)} if image.width else {}
        entry.media.content({"url": image.url, "medium": "image", **size}, group=None)
        entry.media.thumbnail({"url": image.url, **size}, group=None)


def _serialized(document: FeedDocument, rss: bool) -> bytes:
    """feedgen's pretty-printed feed; with a memo, the feed without entries and each entry's
    bytes (from the memo, or rendered now in one batch), joined where feedgen puts them."""
    if document.memo is None or not document.entries:
        return _feedgen_bytes(document, rss)
    pieces = _entry_pieces(document, rss, document.memo)
    if pieces is None:
        return _feedgen_bytes(document, rss)
    skeleton = document.memo.shell(
        document.self_url,
        _shell_key(document, rss),
        lambda: _feedgen_bytes(replace(document, entries=()), rss),
    )
    at = skeleton.rfind(_CLOSE[rss])
    return skeleton[:at] + b"".join(pieces) + skeleton[at:]


def _shell_key(document: FeedDocument, rss: bool) -> tuple[object, ...]:
    """Every field of a document that its feed shows outside the entries."""
    return (
        rss,
        document.title,
        document.description,
        document.html_url,
        document.self_url,
        document.feed_id,
        document.language,
        document.updated,
        document.freshness,
        document.publisher,
        tuple(document.links.items()),
        document.image_url,
        document.image_size,
    )


def _feedgen_bytes(document: FeedDocument, rss: bool) -> bytes:
    generator = _feed_generator(document, rss)
    return bytes(generator.rss_str(pretty=True) if rss else generator.atom_str(pretty=True))


# Pretty-printed, an RSS item is indented under <channel>, an Atom entry under <feed>; the
# entries are the last children of either.
_CLOSE = {True: b"  </channel>", False: b"</feed>"}
_ENTRY_END = {True: b"    </item>\n", False: b"  </entry>\n"}
_ENTRY_START = {True: b"    <item>\n", False: b"  <entry>\n"}


def _entry_pieces(document: FeedDocument, rss: bool, memo: FragmentMemo) -> list[bytes] | None:
    """Each entry's bytes as they stand in a pretty-printed feed, or None when a batch does
    not split into exactly its entries (then the caller renders the feed whole)."""
    key = ("rss" if rss else "atom", document.urls.base)
    names = document.names
    found = [memo.lookup(names, key, article) for article in document.entries]
    missing = [a for a, piece in zip(document.entries, found, strict=True) if piece is None]
    if missing:
        batch = _feedgen_bytes(replace(document, entries=tuple(missing)), rss)
        start = batch.find(_ENTRY_START[rss])
        if start < 0:
            return None
        region = batch[start : batch.rfind(_CLOSE[rss])]
        parts = region.split(_ENTRY_END[rss])
        if len(parts) != len(missing) + 1 or parts[-1]:
            return None  # an entry's own text holds the marker: no safe split
        made = {id(a): part + _ENTRY_END[rss] for a, part in zip(missing, parts, strict=False)}
        if not all(piece.startswith(_ENTRY_START[rss]) for piece in made.values()):
            return None
        for article in missing:
            memo.put(names, key, article, made[id(article)])
        found = [memo.lookup(names, key, article) for article in document.entries]
    return found


def render_rss(document: FeedDocument) -> bytes:
    """The document as RSS 2.0 bytes."""
    body = _serialized(document, rss=True)
    return b"".join(
        part if part.startswith(b"<![CDATA[") else _hex_references(part)
        for part in _CDATA.split(body)
    )


_CDATA = re.compile(rb"(<!\[CDATA\[.*?\]\]>)", re.DOTALL)


def _hex_references(xml: bytes) -> bytes:
    """The same characters, written as the hexadecimal references RSS validators ask for in
    plain text, so that no reader takes an escaped "<" in a title for markup."""
    return xml.replace(b"&lt;", b"&#x3C;").replace(b"&amp;", b"&#x26;")


def render_atom(document: FeedDocument) -> bytes:
    """The document as Atom 1.0 bytes."""
    return _serialized(document, rss=False)


def _json_item(document: FeedDocument, article: Article) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": article.url,
        "url": article.url,
        "title": article.title,
        "content_html": _entry_html(document, article),
        "date_published": utc_time(article.published_at),
    }
    if article.excerpt:
        item["summary"] = article.excerpt
    if article.lead_image is not None:
        item["image"] = article.lead_image.url
    if article.topics:
        item["tags"] = [document.names.topic(topic) for topic in article.topics]
    if article.provider is not None:
        author: dict[str, str] = {"name": document.names.provider(article.provider)}
        if article.provider.domain:
            author["url"] = f"https://{article.provider.domain}"
        item["authors"] = [author]
    return item


def _json_item_text(document: FeedDocument, article: Article) -> str:
    """An item as it stands in the feed's indented JSON (json_bytes: two spaces a level, the
    items two levels deep), made once per catalog: the pure-Python encoder that indenting
    takes is most of a JSON feed's cost."""
    assert document.memo is not None

    def make() -> str:
        text = json.dumps(_json_item(document, article), ensure_ascii=False, indent=2)
        return _ITEM_INDENT + text.replace("\n", "\n" + _ITEM_INDENT)

    made: str = document.memo.get(document.names, ("json", document.urls.base), article, make)
    return made


_ITEM_INDENT = "    "
_NO_ITEMS = '"items": []\n}'


def render_json(document: FeedDocument) -> bytes:
    """The document as JSON Feed 1.1 bytes."""
    feed: dict[str, Any] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": document.title,
        "home_page_url": document.html_url,
        "feed_url": document.self_url,
        "description": document.description,
        "language": document.language,
    }
    if document.image_url:
        feed["icon"] = document.image_url
        feed["favicon"] = document.image_url
    if "next" in document.links:
        feed["next_url"] = document.links["next"]
    if "hub" in document.links:
        feed["hubs"] = [{"type": "WebSub", "url": document.links["hub"]}]
    if document.memo is None or not document.entries:
        feed["items"] = [_json_item(document, article) for article in document.entries]
        return json_bytes(feed)
    # The same text json_bytes gives, the items' own taken from the memo.
    feed["items"] = []
    head = json_bytes(feed).decode("utf-8")
    assert head.endswith(_NO_ITEMS + "\n")
    items = ",\n".join(_json_item_text(document, article) for article in document.entries)
    body = head[: -len("[]\n}\n")] + "[\n" + items + "\n  ]\n}\n"
    return body.encode("utf-8")


RENDERERS = {"rss": render_rss, "atom": render_atom, "json": render_json}


def prerender(
    articles: Sequence[Article], urls: Urls, names: Names, publisher: str, memo: FragmentMemo
) -> None:
    """Put in the memo each article's RSS and Atom entry (one feedgen batch per format, for
    those it lacks) and JSON item, as every feed of these urls and names shows them: one
    batch costs far less than one per feed. Entries a batch cannot split cleanly are left
    for each feed to render (_entry_pieces)."""
    if not articles:
        return
    document = FeedDocument(
        title=GENERATOR,  # the feed around the batch is thrown away: any valid one does
        description=GENERATOR,
        html_url=urls.home(),
        self_url=urls.home(),
        feed_id=urls.home(),
        language="en",
        updated=max(article.published_at for article in articles),
        entries=tuple(articles),
        urls=urls,
        freshness=Freshness(3600),
        publisher=publisher,
        names=names,
        memo=memo,
    )
    for rss in (True, False):
        _batch(document, rss, memo)
    for article in articles:
        _json_item_text(document, article)


def _batch(document: FeedDocument, rss: bool, memo: FragmentMemo) -> None:
    """The document's entries into the memo; a batch that does not split (an entry's text
    holds the marker) is tried again in halves, down to the entry that is left to its
    feeds."""
    if _entry_pieces(document, rss, memo) is None and len(document.entries) > 1:
        middle = len(document.entries) // 2
        for half in (document.entries[:middle], document.entries[middle:]):
            _batch(replace(document, entries=half), rss, memo)


def _piece_keys(urls: Urls) -> tuple[tuple[str, str], ...]:
    return (("rss", urls.base), ("atom", urls.base), ("json", urls.base))


def lacking(
    articles: Sequence[Article], urls: Urls, names: Names, memo: FragmentMemo
) -> list[Article]:
    """The articles whose entry, in some format, the memo lacks."""
    keys = _piece_keys(urls)
    return [a for a in articles if any(memo.lookup(names, k, a) is None for k in keys)]


Pieces = list[tuple[Any, ...]]


def pieces(articles: Sequence[Article], urls: Urls, names: Names, memo: FragmentMemo) -> Pieces:
    """Each article's entries in the memo (None where it lacks one), to hand to another
    process's memo (keep)."""
    keys = _piece_keys(urls)
    return [tuple(memo.lookup(names, k, a) for k in keys) for a in articles]


def keep(
    articles: Sequence[Article], made: Pieces, urls: Urls, names: Names, memo: FragmentMemo
) -> None:
    """Put in the memo the entries `pieces` gave for the same articles."""
    keys = _piece_keys(urls)
    for article, values in zip(articles, made, strict=True):
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                memo.put(names, key, article, value)
