"""The served shape of an article: frozen, slotted, and holding only what a feed shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Provider:
    """Who published an article; `key` is its lowercased domain without `www.`, or a slug."""

    key: str
    name: str
    domain: str


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic as written in one article; `key` is its slug, shared by spellings."""

    key: str
    name: str


@dataclass(frozen=True, slots=True)
class Image:
    """A picture with its size in pixels (0 when unknown)."""

    url: str
    width: int
    height: int
    title: str


@dataclass(frozen=True, slots=True)
class Related:
    """Other coverage of the same story, linked from an article's content."""

    title: str
    url: str
    provider_name: str


@dataclass(frozen=True, slots=True)
class Article:
    """One news article as served; `published` false means it is never shown."""

    url: str
    title: str
    excerpt: str
    published_at: datetime
    provider: Provider | None
    topics: tuple[Topic, ...]
    images: tuple[Image, ...]
    related: tuple[Related, ...]
    quality: float | None
    heat: float | None
    published: bool
    # The Markdown body after the front matter, as sanitized HTML; "" when there is none.
    body_html: str = ""

    @property
    def lead_image(self) -> Image | None:
        """The first image, shown in the entry's content and as Media RSS."""
        return self.images[0] if self.images else None
