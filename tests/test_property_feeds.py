"""Random text in every string field: every feed in every format stays well-formed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedserver.catalog import empty_catalog, update_catalog
from feedserver.freshness import Freshness
from feedserver.load.fields import article_from_mapping
from feedserver.render import RENDERERS, FeedDocument
from feedserver.urls import Urls

# Any code point at all, surrogates and U+FFFE included: the seed reader must clean them.
awkward = st.sampled_from(
    ["\ud800", "\udfff", "\ufffe", "\uffff", "\x00", "\x1b", "]", ">", "&", "<"]
)
anything = st.text(st.characters() | awkward, max_size=40)
url_path = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=12)
# Markdown and HTML a body may hold, mixed with any text.
markup = st.sampled_from(
    ["# ", "*", "[a](", ")", "![i](x.png)", "<script>", "<img src=x onerror=y>", "]]>", "`", "\n"]
)
body = st.lists(st.text(st.characters() | awkward, max_size=8) | markup, max_size=12).map("".join)


@st.composite
def front_matter(draw: st.DrawFn) -> dict[str, object]:
    return {
        "title": "T" + draw(anything),
        "excerpt": draw(anything),
        "webUrl": "https://example.com/" + draw(url_path),
        "publishedDateTime": "2021-01-01T00:00:00Z",
        "published": True,
        "provider": {"name": draw(anything), "domain": draw(anything)},
        "topics": [draw(anything), "Fixed"],
        "images": [{"url": "https://example.com/i.jpg", "title": draw(anything), "width": 3}],
        "related": [
            {
                "title": "R" + draw(anything),
                "webUrl": "https://example.com/r/" + draw(url_path),
                "provider": {"name": draw(anything)},
            }
        ],
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(front_matter(), body)
def test_every_format_stays_well_formed(fields: dict[str, object], markdown: str) -> None:
    article, _ = article_from_mapping(fields, markdown)
    now = datetime(2022, 1, 1, tzinfo=UTC)
    catalog = update_catalog(empty_catalog("Site"), (), [article], now, (), {}, 1)
    collections = [catalog.everything, *catalog.topics.values(), *catalog.providers.values()]
    for collection in collections:
        for extension, render in RENDERERS.items():
            document = FeedDocument(
                title=f"{collection.name} feed",
                description="d",
                html_url="http://feeds.test/",
                self_url=f"http://feeds.test/x.{extension}",
                feed_id=f"http://feeds.test/x.{extension}",
                language="en",
                updated=collection.updated,
                entries=collection.articles,
                urls=Urls("http://feeds.test"),
                freshness=Freshness(60),
                publisher="Site",
            )
            body = render(document)
            if extension == "json":
                assert json.loads(body)["items"][0]["url"] == article.url
                continue
            ElementTree.fromstring(body)  # well-formed XML
            parsed = feedparser.parse(body)
            assert not parsed.bozo, parsed.bozo_exception
            assert parsed.entries[0].link == article.url
