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


# Images and related items are kept packed in one string per article, fields split by
# FIELD and items by ITEM (control characters that clean_text removes from every text, so
# they never occur inside one): a tuple of objects and two or three strings per item cost
# about 150 bytes more per item, at four related items and 100,000 articles 60 MB.
FIELD = "\x1f"
ITEM = "\x1e"


def pack_images(images: tuple[Image, ...] | list[Image]) -> str:
    """Images as one string, for Article.image_text."""
    return ITEM.join(f"{i.url}{FIELD}{i.width}{FIELD}{i.height}{FIELD}{i.title}" for i in images)


def pack_related(related: tuple[Related, ...] | list[Related]) -> str:
    """Related items as one string, for Article.related_text."""
    return ITEM.join(f"{r.title}{FIELD}{r.url}{FIELD}{r.provider_name}" for r in related)


def _image(text: str) -> Image:
    url, width, height, title = text.split(FIELD)
    return Image(url, int(width), int(height), title)


@dataclass(frozen=True, slots=True)
class Article:
    """One news article as served; `published` false means it is never shown."""

    url: str
    title: str
    excerpt: str
    published_at: datetime
    provider: Provider | None
    topics: tuple[Topic, ...]
    image_text: str  # see pack_images; read through `images` and `lead_image`
    related_text: str  # see pack_related; read through `related`
    quality: float | None
    heat: float | None
    published: bool
    # The Markdown body after the front matter, as sanitized HTML; "" when there is none.
    body_html: str = ""

    @property
    def images(self) -> tuple[Image, ...]:
        """The article's pictures, in the order of the seed file."""
        if not self.image_text:
            return ()
        return tuple(_image(text) for text in self.image_text.split(ITEM))

    @property
    def lead_image(self) -> Image | None:
        """The first image, shown in the entry's content and as Media RSS."""
        if not self.image_text:
            return None
        end = self.image_text.find(ITEM)
        return _image(self.image_text if end < 0 else self.image_text[:end])

    @property
    def related(self) -> tuple[Related, ...]:
        """Other coverage of the same story, in the order of the seed file."""
        if not self.related_text:
            return ()
        return tuple(Related(*text.split(FIELD)) for text in self.related_text.split(ITEM))
